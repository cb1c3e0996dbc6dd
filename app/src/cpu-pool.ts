import { join } from "node:path";
import { Worker } from "node:worker_threads";

interface Job {
  readonly id: number;
  readonly ms: number;
  readonly resolve: (spins: number) => void;
  readonly reject: (err: Error) => void;
}

/** The pool's queue is full: the caller should answer "busy", not wait without bound. */
export class PoolBusyError extends Error {}

/** A fixed pool of worker threads with a bounded FIFO queue, for CPU work that must not block the event loop. */
export class CpuPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  /** @param maxQueued jobs that may wait for a free thread; more are refused with PoolBusyError */
  constructor(
    private readonly size: number,
    private readonly maxQueued = 64,
  ) {}

  run(ms: number): Promise<number> {
    if (this.closed) return Promise.reject(new Error("cpu pool is closed"));
    // Jobs beyond the free threads wait; past maxQueued waiting, refuse instead of queueing without bound.
    if (this.busy.size >= this.size && this.queue.length >= this.maxQueued) return Promise.reject(new PoolBusyError("cpu pool is busy"));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, ms, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error("cpu pool is closed"));
    const all = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? this.spawn();
      if (!worker) return;
      const job = this.queue.shift() as Job;
      this.busy.set(worker, job);
      worker.postMessage({ id: job.id, ms: job.ms });
    }
  }

  private spawn(): Worker | undefined {
    if (this.busy.size + this.idle.length >= this.size) return undefined;
    const worker = new Worker(join(__dirname, "cpu-thread.js"));
    worker.unref();
    worker.on("message", (msg: { spins: number }) => {
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      job?.resolve(msg.spins);
      if (!this.closed) {
        this.idle.push(worker);
        this.dispatch();
      }
    });
    worker.on("error", (err) => {
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      job?.reject(err);
      this.dispatch();
    });
    return worker;
  }
}
