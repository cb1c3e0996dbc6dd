import { CpuPool } from "./cpu-pool";
import { settingsOrExit } from "./env";
import { installGracefulShutdown } from "./lifecycle";
import { createAppServer, type ServerState } from "./server";

/** Runs one server process; used directly in pods, under PM2, and by the cluster primary's workers. */
export function runSingleProcess(): void {
  const settings = settingsOrExit();
  const state: ServerState = { shuttingDown: false };
  const pool = new CpuPool(settings.cpuThreads, settings.cpuQueue);
  const server = createAppServer(settings, pool, state);
  installGracefulShutdown(server, pool, state, settings.shutdownGraceSeconds);
  server.on("error", (err) => {
    process.stderr.write(`nodescale-app: cannot listen on ${settings.host}:${settings.port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(settings.port, settings.host, () => {
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : settings.port;
    process.stdout.write(
      `${JSON.stringify({ t: new Date().toISOString(), pid: process.pid, msg: `listening on ${settings.host}:${port}` })}\n`,
    );
    // PM2's wait_ready and the cluster primary wait for this before routing traffic here.
    process.send?.("ready");
  });
}

if (require.main === module) runSingleProcess();
