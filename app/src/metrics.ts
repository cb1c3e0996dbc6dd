import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregatorRegistry, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { mergeExpositions } from "./exposition";
import { logger } from "./log";

/** Routes the histogram knows by name; anything else is "other", so a scan of random paths cannot add series. */
const ROUTES = new Set(["/", "/health", "/ready", "/cpu"]);
/** Request durations from 1 ms (the sample answers in well under that) to 10 s. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** A sibling that does not answer within this time is left out of a scrape rather than holding it. */
const PEER_TIMEOUT_MS = 1_000;
/** How often a process that could not take the metrics port (another one has it) tries again. */
const TAKEOVER_RETRY_MS = 2_000;

/** How this process takes part in the metrics of its group. */
export type MetricsRole =
  /** The only process (a pod, `node dist/main.js`): serves its own metrics on the metrics port. */
  | "single"
  /** A worker of the sample's own clustered primary: answers the primary over Node's IPC, listens on nothing. */
  | "cluster-worker"
  /** One of several processes PM2 runs (cluster or fork mode): serves its metrics to its siblings on a private Unix socket; whichever holds the metrics port answers for all. */
  | "pm2";

export interface ProcessMetrics {
  readonly registry: Registry;
  /** Records one answered request. */
  observe(route: string, status: number, seconds: number): void;
}

/** This process's registry: Node's default metrics and the request histogram, every series labelled with the process. */
export function createProcessMetrics(worker: string): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ pid: String(process.pid), worker });
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route and status",
    labelNames: ["route", "status"],
    buckets: BUCKETS,
    registers: [registry],
  });
  // PM2 counts restarts (and reloads) in restart_time, the sample's primary in NODESCALE_RESTARTS.
  const restarts = new Gauge({
    name: "nodescale_process_restarts",
    help: "Times the supervisor restarted or reloaded this worker slot before this process",
    registers: [registry],
  });
  restarts.set(Number(process.env.restart_time ?? process.env.NODESCALE_RESTARTS ?? 0) || 0);
  return {
    registry,
    observe: (route, status, seconds) => duration.observe({ route: ROUTES.has(route) ? route : "other", status: String(status) }, seconds),
  };
}

function answer(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

/** A listener that answers GET /metrics with `collect()` and 404 to anything else. */
function metricsServer(contentType: string, collect: () => Promise<string>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET" || req.url !== "/metrics") return answer(res, 404, "text/plain", "not found\n");
    collect().then(
      (text) => answer(res, 200, contentType, text),
      (err: Error) => {
        logger.error({ err: err.message }, "metrics scrape failed");
        answer(res, 500, "text/plain", "metrics unavailable\n");
      },
    );
  });
}

/** Listens on host:port; while another process holds the port, tries again every few seconds (it takes over when that one exits). */
function listenOrRetry(server: Server, port: number, host: string): void {
  const attempt = () => server.listen(port, host);
  server.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EADDRINUSE") {
      logger.error({ err: err.message }, `metrics cannot listen on ${host}:${port}`);
      return;
    }
    setTimeout(attempt, TAKEOVER_RETRY_MS).unref();
  });
  server.on("listening", () => logger.info(`metrics on ${host}:${port}/metrics`));
  attempt();
  server.unref();
}

/** The folder where the processes of one group (one metrics port) leave their sockets: private to the user. */
export function peerSocketDir(host: string, port: number): string {
  return process.env.METRICS_SOCKET_DIR || join(tmpdir(), `nodescale-metrics-${host}-${port}`);
}

function scrapeSocket(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath: path, path: "/metrics", timeout: PEER_TIMEOUT_MS }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve(res.statusCode === 200 ? text : undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", (err: NodeJS.ErrnoException) => {
      // Nobody listens: the process that left it is gone (a crash leaves its socket file behind).
      if (err.code === "ECONNREFUSED") rmSync(path, { force: true });
      resolve(undefined);
    });
    req.end();
  });
}

/** The sample's clustered primary: serves every worker's metrics, aggregated over Node's IPC. */
export function startPrimaryMetrics(port: number | undefined, host: string): void {
  if (port === undefined) return;
  const aggregator = new AggregatorRegistry();
  listenOrRetry(
    metricsServer(aggregator.contentType, () => aggregator.clusterMetrics()),
    port,
    host,
  );
}

/**
 * Starts this process's part in the metrics of its group. Without a metrics port (METRICS_PORT unset) metrics
 * are still kept but no listener opens.
 */
export function startMetrics(role: MetricsRole, own: ProcessMetrics, port: number | undefined, host: string): void {
  if (role === "cluster-worker") {
    // Constructing one installs prom-client's answer to the primary's IPC request (for the registry given).
    AggregatorRegistry.setRegistries([own.registry]);
    new AggregatorRegistry();
    return;
  }
  if (port === undefined) return;
  const serveOwn = () => metricsServer(own.registry.contentType, () => own.registry.metrics());
  if (role === "single") {
    listenOrRetry(serveOwn(), port, host);
    return;
  }
  // pm2: siblings find each other through their sockets; the process holding the port merges them all.
  const dir = peerSocketDir(host, port);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mine = join(dir, `${process.pid}.sock`);
  rmSync(mine, { force: true });
  const peer = serveOwn();
  peer.on("error", (err) => logger.error({ err: err.message }, `metrics socket ${mine} failed; this process is left out of scrapes`));
  // exclusive: a PM2 cluster worker binds its own socket instead of sharing one through PM2's primary.
  peer.listen({ path: mine, exclusive: true });
  peer.unref();
  // The app exits with process.exit, which closes no server: the socket file goes here (a crash leaves it, and
  // the next scrape removes it).
  process.on("exit", () => rmSync(mine, { force: true }));
  const collect = async () => {
    const others = readdirSync(dir)
      .filter((name) => name.endsWith(".sock") && name !== `${process.pid}.sock`)
      .map((name) => scrapeSocket(join(dir, name)));
    const texts = [await own.registry.metrics(), ...(await Promise.all(others))];
    return mergeExpositions(texts.filter((t): t is string => t !== undefined));
  };
  listenOrRetry(metricsServer(own.registry.contentType, collect), port, host);
}
