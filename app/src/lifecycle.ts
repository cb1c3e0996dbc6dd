import type { Server as HttpServer } from "node:http";
import { Server, type Socket } from "node:net";
import type { CpuPool } from "./cpu-pool";
import { logger } from "./log";
import type { ServerState } from "./server";

/** How long idle keep-alive sockets may still carry one more request (answered with Connection: close). */
const IDLE_DRAIN_MS = 1_000;

const log = (message: string): void => logger.info(message);

/**
 * Graceful shutdown: readiness flips to 503, the listener closes, in-flight requests finish,
 * idle keep-alive sockets close after a short drain, and a hard deadline ends it all.
 * A second signal exits 1 at once.
 */
export function installGracefulShutdown(
  server: HttpServer,
  pool: CpuPool,
  state: ServerState,
  graceSeconds: number,
): (reason: string) => void {
  const sockets = new Set<Socket>();
  const busy = new WeakMap<Socket, number>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    busy.set(socket, 0);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("request", (req, res) => {
    const socket = req.socket as Socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.on("finish", () => {
      busy.set(socket, (busy.get(socket) ?? 1) - 1);
      if (state.shuttingDown && busy.get(socket) === 0) socket.end();
    });
  });

  const closeIdle = (): void => {
    for (const socket of sockets) {
      if ((busy.get(socket) ?? 0) !== 0) continue;
      socket.end();
      // A client that never closes its side (a pooled idle connection) would hold the drain until the grace
      // period ran out; an idle socket carries no work, so it is destroyed shortly after.
      setTimeout(() => {
        if ((busy.get(socket) ?? 0) === 0) socket.destroy();
      }, IDLE_DRAIN_MS).unref();
    }
  };

  const shutdown = (reason: string): void => {
    if (state.shuttingDown) {
      log(`second ${reason} during shutdown: exiting now`);
      process.exit(1);
    }
    state.shuttingDown = true;
    log(`${reason}: draining (grace ${graceSeconds}s)`);
    const deadline = setTimeout(() => {
      log(`grace period of ${graceSeconds}s over with ${sockets.size} open connection(s): forcing exit`);
      process.exit(1);
    }, graceSeconds * 1_000);
    deadline.unref();
    // net.Server's close stops accepting but, unlike http.Server's since Node 19, leaves idle keep-alive
    // sockets open: a client about to reuse one gets its answer (with Connection: close) instead of a reset.
    Server.prototype.close.call(server, () => {
      void pool.close().then(() => {
        log("drained: exiting");
        process.exit(0);
      });
    });
    setTimeout(closeIdle, IDLE_DRAIN_MS).unref();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // Node's cluster and PM2 may ask a worker to stop through IPC instead of a signal.
  process.on("message", (msg) => {
    if (msg === "shutdown") shutdown("shutdown message");
  });
  return shutdown;
}
