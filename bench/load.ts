import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { createServer } from "node:net";

// autocannon ships no types; this is the part of its result read here.
const autocannon = require("autocannon") as (opts: Record<string, unknown>) => Promise<{
  requests: { average: number };
  latency: { p50: number; p90: number; p97_5: number; p99: number };
  non2xx: number;
  errors: number;
}>;

/** One measured load run: requests/s and latency percentiles in milliseconds. */
export interface Measured {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export async function waitReady(port: number, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not become ready on port ${port}`);
}

/** Starts the sample app; its JSON log lines go to `logFile`, as PM2 would write them. */
export async function startApp(
  script: string,
  env: Record<string, string>,
  logFile: string,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const log = openSync(logFile, "a");
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), CPU_ENDPOINT: "on", ...env },
    stdio: ["ignore", log, log],
  });
  try {
    await waitReady(port, script);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return { child, port };
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** autocannon against 127.0.0.1:port/path; any error or non-2xx answer fails the benchmark. */
export async function measure(port: number, path: string, seconds: number, connections = 16): Promise<Measured> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections, duration: seconds });
  if (r.errors > 0 || r.non2xx > 0) throw new Error(`load run on ${path} had ${r.errors} errors and ${r.non2xx} non-2xx answers`);
  return { requestsPerSecond: r.requests.average, p50Ms: r.latency.p50, p90Ms: r.latency.p90, p99Ms: r.latency.p99 };
}
