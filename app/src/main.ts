import cluster from "node:cluster";
import { CpuPool } from "./cpu-pool";
import { settingsOrExit } from "./env";
import { installGracefulShutdown } from "./lifecycle";
import { logger } from "./log";
import { createProcessMetrics, type MetricsRole, startMetrics } from "./metrics";
import { createAppServer, type ServerState, workerId } from "./server";

/** Who serves this process's metrics: the sample's own primary, PM2's siblings, or the process itself. */
function metricsRole(env: NodeJS.ProcessEnv): MetricsRole {
  if (cluster.isWorker && env.NODESCALE_WORKER_ID !== undefined && env.pm_id === undefined) return "cluster-worker";
  return env.pm_id !== undefined ? "pm2" : "single";
}

/** Runs one server process; used directly in pods, under PM2, and by the cluster primary's workers. */
export function runSingleProcess(): void {
  const settings = settingsOrExit();
  const state: ServerState = { shuttingDown: false };
  const pool = new CpuPool(settings.cpuThreads, settings.cpuQueue);
  const metrics = settings.metrics ? createProcessMetrics(workerId()) : undefined;
  const server = createAppServer(settings, pool, state, metrics);
  if (metrics !== undefined) startMetrics(metricsRole(process.env), metrics, settings.metricsPort, settings.host);
  installGracefulShutdown(server, pool, state, settings.shutdownGraceSeconds);
  server.on("error", (err) => {
    logger.fatal(`cannot listen on ${settings.host}:${settings.port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(settings.port, settings.host, () => {
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : settings.port;
    logger.info(`listening on ${settings.host}:${port}`);
    // PM2's wait_ready and the cluster primary wait for this before routing traffic here.
    process.send?.("ready");
  });
}

if (require.main === module) runSingleProcess();
