import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";

// autocannon ships no types; this is the part of its result read here.
const autocannon = require("autocannon") as (
  opts: Record<string, unknown>,
) => Promise<{ requests: { average: number }; non2xx: number; errors: number }>;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

async function startApp(script: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), CPU_ENDPOINT: "on", ...env },
    stdio: "ignore",
  });
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { child, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`${script} did not become ready`);
}

async function requestsPerSecond(port: number, seconds: number): Promise<number> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/cpu?ms=5`, connections: 16, duration: seconds });
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`load run had ${result.errors} errors and ${result.non2xx} non-2xx answers`);
  return result.requests.average;
}

/** Cluster of N workers vs one process on /cpu?ms=5, measured back to back in this run. */
export async function appScaling(root: string, seconds: number): Promise<void> {
  const cores = availableParallelism();
  const dist = join(root, "app", "dist");
  const single = await startApp(join(dist, "main.js"), {});
  const singleRps = await requestsPerSecond(single.port, seconds);
  single.child.kill("SIGTERM");
  const cluster = await startApp(join(dist, "cluster.js"), { WORKERS: String(cores) });
  const clusterRps = await requestsPerSecond(cluster.port, seconds);
  cluster.child.kill("SIGTERM");
  const ratio = clusterRps / singleRps;
  console.log(`app scaling (${cores} cores, autocannon -c 16 -d ${seconds} on GET /cpu?ms=5, load generator on the same machine):`);
  console.log(
    `  cluster of ${cores} workers vs 1 process: ${ratio.toFixed(2)}x requests/s (${clusterRps.toFixed(0)} vs ${singleRps.toFixed(0)})`,
  );
  console.log(`  ratio / cores = ${(ratio / cores).toFixed(2)} (aim: >= 0.90)`);
}
