import { parentPort } from "node:worker_threads";
import { burnCpu } from "./cpu";

// Runs in a worker thread: burns CPU off the event loop so /health stays fast.
parentPort?.on("message", (msg: { id: number; ms: number }) => {
  parentPort?.postMessage({ id: msg.id, spins: burnCpu(msg.ms) });
});
