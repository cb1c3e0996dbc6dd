import cluster, { type Worker } from "node:cluster";
import { settingsOrExit } from "./env";
import { logger } from "./log";
import { runSingleProcess } from "./main";
import { startPrimaryMetrics } from "./metrics";
import { CrashTracker } from "./supervisor";

const primaryLog = logger.child({ role: "primary" });
const log = (message: string): void => primaryLog.info(message);

interface Slot {
  readonly index: number;
  worker?: Worker;
  starts: number;
  readonly crashes: CrashTracker;
  givenUp: boolean;
}

/** Under PM2 (which clusters on VMs) or in a pod (where the HPA scales), one process is right. */
function runsUnderOrchestrator(env: NodeJS.ProcessEnv): boolean {
  return env.pm_id !== undefined || env.KUBERNETES_SERVICE_HOST !== undefined;
}

function runPrimary(): void {
  const settings = settingsOrExit();
  const slots: Slot[] = [];
  let stopping = false;
  let rolling = false;

  const fork = (slot: Slot): Worker => {
    // The worker reports its slot's restarts in its metrics (the first start of a slot is not one).
    const worker = cluster.fork({ NODESCALE_WORKER_ID: String(slot.index + 1), NODESCALE_RESTARTS: String(slot.starts++) });
    slot.worker = worker;
    worker.on("exit", (code, signal) => {
      if (slot.worker !== worker || stopping) return;
      slot.worker = undefined;
      const delay = slot.crashes.recordCrash(Date.now());
      if (delay === undefined) {
        slot.givenUp = true;
        log(
          `worker ${slot.index + 1} crashed ${slot.crashes.recentCrashes} times in a row (last: code ${code}, signal ${signal}); not restarting it`,
        );
        if (slots.every((s) => s.givenUp)) {
          log("every worker is crash-looping: exiting 1");
          process.exit(1);
        }
        return;
      }
      log(`worker ${slot.index + 1} (pid ${worker.process.pid}) exited (code ${code}, signal ${signal}); restarting in ${delay} ms`);
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, delay);
    });
    return worker;
  };

  const listening = (worker: Worker): Promise<void> =>
    new Promise((resolve, reject) => {
      worker.once("listening", () => resolve());
      worker.once("exit", (code) => reject(new Error(`worker exited with code ${code} before listening`)));
    });

  const stopWorker = (worker: Worker): Promise<void> =>
    new Promise((resolve) => {
      if (worker.isDead()) return resolve();
      worker.once("exit", () => resolve());
      worker.process.kill("SIGTERM");
    });

  // Zero-downtime restart: a replacement is listening before its predecessor drains.
  const rollingRestart = async (): Promise<void> => {
    if (rolling || stopping) return;
    rolling = true;
    log("SIGHUP: rolling restart of workers, one at a time");
    try {
      for (const slot of slots) {
        if (stopping) break;
        const old = slot.worker;
        const replacement = fork(slot);
        await listening(replacement);
        if (old) await stopWorker(old);
        slot.givenUp = false;
      }
      log("rolling restart done");
    } catch (err) {
      log(`rolling restart stopped: ${(err as Error).message}`);
    } finally {
      rolling = false;
    }
  };

  const shutdown = (reason: string): void => {
    if (stopping) {
      log(`second ${reason}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${reason}: stopping ${slots.filter((s) => s.worker).length} worker(s)`);
    const deadline = setTimeout(
      () => {
        log("workers did not stop within the grace period: exiting 1");
        process.exit(1);
      },
      (settings.shutdownGraceSeconds + 2) * 1_000,
    );
    deadline.unref();
    void Promise.all(slots.map((s) => (s.worker ? stopWorker(s.worker) : Promise.resolve()))).then(() => {
      log("all workers stopped");
      process.exit(0);
    });
  };

  for (let index = 0; index < settings.workers; index++) {
    const slot: Slot = { index, starts: 0, crashes: new CrashTracker(), givenUp: false };
    slots.push(slot);
    fork(slot);
  }
  let readyCount = 0;
  cluster.on("listening", () => {
    readyCount++;
    if (readyCount === settings.workers) {
      log(`${settings.workers} worker(s) listening on ${settings.host}:${settings.port}`);
      process.send?.("ready");
    }
  });
  if (settings.metrics) startPrimaryMetrics(settings.metricsPort, settings.host);
  process.on("SIGHUP", () => void rollingRestart());
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

if (cluster.isPrimary && !runsUnderOrchestrator(process.env)) runPrimary();
else runSingleProcess();
