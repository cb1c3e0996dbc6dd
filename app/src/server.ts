import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import { burnCpu } from "./cpu";
import { type CpuPool, PoolBusyError } from "./cpu-pool";
import type { AppSettings } from "./env";
import { logger } from "./log";
import type { ProcessMetrics } from "./metrics";

/** Shared between the request handler and the shutdown logic. */
export interface ServerState {
  shuttingDown: boolean;
}

/** A request id as Nginx passes it on: a plain token (anything else is replaced, so it is safe in logs and headers). */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** Probes arrive every few seconds from every load balancer and kubelet: logged only at debug. */
const PROBES = new Set(["/health", "/ready"]);

export function workerId(): string {
  // PM2 sets pm_id; Node's cluster sets NODE_UNIQUE_ID in workers it forks.
  return process.env.pm_id ?? process.env.NODESCALE_WORKER_ID ?? "0";
}

/** Which release this process runs: set by the deploy (NODESCALE_RELEASE) or written beside the code (RELEASE). */
function readRelease(): string {
  if (process.env.NODESCALE_RELEASE) return process.env.NODESCALE_RELEASE;
  try {
    return readFileSync(join(__dirname, "..", "RELEASE"), "utf8").trim() || "unknown";
  } catch {
    return "unknown";
  }
}

function send(res: ServerResponse, status: number, body: unknown, state: ServerState): void {
  const text = `${JSON.stringify(body)}\n`;
  const headers: Record<string, string | number> = {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  };
  // While draining, tell keep-alive clients to reconnect elsewhere instead of reusing this socket.
  if (state.shuttingDown) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(text);
}

function parseCpuMs(url: URL, maxCpuMs: number): number | string {
  const raw = url.searchParams.get("ms");
  if (raw === null || !/^\d+$/.test(raw)) return `ms must be a whole number of milliseconds (1-${maxCpuMs}), got ${JSON.stringify(raw)}`;
  const ms = Number(raw);
  if (ms < 1 || ms > maxCpuMs) return `ms must be between 1 and ${maxCpuMs}, got ${ms}`;
  return ms;
}

/** The path of an origin-form request target ("/x?y"), or undefined for anything else ("//x", "http://[", "*"). */
function requestPath(target: string | undefined): URL | undefined {
  if (target === undefined || !target.startsWith("/") || target.startsWith("//")) return undefined;
  try {
    return new URL(target, "http://localhost");
  } catch {
    return undefined;
  }
}

export function createAppServer(settings: AppSettings, pool: CpuPool, state: ServerState, metrics?: ProcessMetrics): Server {
  const host = hostname();
  // Which machine answered: named by the deploy where several share one host (the local stack), else the host.
  const machine = process.env.NODESCALE_MACHINE || host;
  const release = readRelease();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = requestPath(req.url);
    if (url === undefined) {
      send(res, 400, { error: "bad request target: expected a path such as /health" }, state);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, { error: "method not allowed" }, state);
      return;
    }
    switch (url.pathname) {
      case "/":
        send(res, 200, { service: "nodescale-sample", pid: process.pid, hostname: host, machine, worker: workerId(), release }, state);
        return;
      case "/health":
        send(res, 200, { status: "ok", pid: process.pid }, state);
        return;
      case "/ready":
        if (state.shuttingDown) send(res, 503, { status: "shutting-down", pid: process.pid }, state);
        else send(res, 200, { status: "ready", pid: process.pid }, state);
        return;
      case "/cpu": {
        if (!settings.cpuEndpoint) {
          send(res, 404, { error: "not found" }, state);
          return;
        }
        const ms = parseCpuMs(url, settings.maxCpuMs);
        if (typeof ms === "string") {
          send(res, 400, { error: ms }, state);
          return;
        }
        const offload = url.searchParams.get("offload") === "1";
        let spins: number;
        try {
          spins = offload ? await pool.run(ms) : burnCpu(ms);
        } catch (err) {
          if (!(err instanceof PoolBusyError)) throw err;
          res.setHeader("retry-after", "1");
          send(res, 503, { error: "busy: too much CPU work queued, retry later" }, state);
          return;
        }
        send(res, 200, { pid: process.pid, hostname: host, ms, offload, spins }, state);
        return;
      }
      default:
        send(res, 404, { error: "not found" }, state);
    }
  };
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const given = req.headers["x-request-id"];
    // The id Nginx made or passed on; a request that reached the app directly gets one here.
    const reqId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader("x-request-id", reqId);
    res.on("finish", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const path = requestPath(req.url)?.pathname ?? "(bad target)";
      metrics?.observe(path, res.statusCode, seconds);
      const line = { reqId, method: req.method, path, status: res.statusCode, ms: Math.round(seconds * 1e6) / 1e3 };
      if (PROBES.has(path)) logger.debug(line, "request");
      else logger.info(line, "request");
    });
    handle(req, res).catch((err: Error) => {
      // The detail goes to the log, never to the client.
      logger.error({ reqId, err: err.message }, "request failed");
      if (!res.headersSent) send(res, 500, { error: "internal error" }, state);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;
  server.headersTimeout = settings.headersTimeoutMs;
  return server;
}
