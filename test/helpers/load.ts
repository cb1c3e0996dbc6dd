import { Agent, request } from "node:http";

/**
 * Connections the load holds open at most: enough to saturate the stack on this machine (one load generator at
 * full rate), few enough that the deploy under test still gets the cores it needs on a shared 2-core CI machine.
 */
export const LOAD_CONNECTIONS = 16;

/** A request with no answer within this counts as failed (autocannon's default, and far below Nginx's 60 s). */
export const ANSWER_TIMEOUT_MS = 10_000;

/** What one run of load sent and how it ended; every request is counted once, in `ok` or `failed`. */
export interface LoadResult {
  readonly sent: number;
  /** Answered 2xx. */
  readonly ok: number;
  /** Anything else: another status, a reset or closed connection, no answer within ANSWER_TIMEOUT_MS. */
  readonly failed: number;
  /**
   * Failures by kind, for the message of a failing test: `HTTP <status>`, `<error code> (no answer)` (the
   * connection failed before an answer began), `<error code> (answer cut short)`.
   */
  readonly failures: Readonly<Record<string, number>>;
  readonly seconds: number;
  /** Requests sent per second, over the run. */
  readonly rate: number;
  /** The slowest answer, in milliseconds (a shared, loaded machine stalls processes for seconds). */
  readonly slowestMs: number;
}

/**
 * A strict HTTP/1.1 client, unlike autocannon: it never sends on a connection whose last answer said
 * "Connection: close" (RFC 9112 9.6; autocannon does, and counts neither that request nor a request on a
 * connection the server closed without a reset), never retries, and counts every request it sends as answered
 * or failed. `connections` loops each send one request after another on a keep-alive agent: load as fast as the
 * stack answers, bounded in connections; `requestsPerSecond` paces them instead.
 */
function runLoad(
  url: string,
  options: { connections: number; maxSeconds: number; requestsPerSecond?: number },
): {
  stop: () => Promise<LoadResult>;
} {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections, scheduling: "lifo" });
  const kinds: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let stopping = false;
  let slowestMs = 0;
  const started = Date.now();
  const fail = (kind: string) => {
    failed++;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  };
  const one = () =>
    new Promise<void>((resolve) => {
      sent++;
      const begun = Date.now();
      const req = request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, agent }, (res) => {
        res.resume();
        res.on("end", () => {
          slowestMs = Math.max(slowestMs, Date.now() - begun);
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) ok++;
          else fail(`HTTP ${res.statusCode}`);
          resolve();
        });
        res.on("error", (err: NodeJS.ErrnoException) => {
          fail(`${err.code ?? err.message} (answer cut short)`);
          resolve();
        });
      });
      req.setTimeout(ANSWER_TIMEOUT_MS, () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
      req.on("error", (err: NodeJS.ErrnoException) => {
        fail(`${err.code ?? err.message} (no answer)`);
        resolve();
      });
      req.end();
    });
  const interval = options.requestsPerSecond === undefined ? 0 : (1000 * options.connections) / options.requestsPerSecond;
  const loop = async () => {
    let next = Date.now();
    while (!stopping && Date.now() - started < options.maxSeconds * 1000) {
      await one();
      if (interval > 0) {
        next += interval;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  };
  const loops = Promise.all(Array.from({ length: options.connections }, loop));
  return {
    stop: async () => {
      stopping = true;
      await loops;
      agent.destroy();
      const seconds = (Date.now() - started) / 1000;
      return { sent, ok, failed, failures: kinds, seconds, rate: Math.round(sent / seconds), slowestMs };
    },
  };
}

/** Load on a URL for `seconds`; resolves with its totals. */
export async function steadyLoad(url: string, seconds: number, connections = LOAD_CONNECTIONS): Promise<LoadResult> {
  const run = runLoad(url, { connections, maxSeconds: seconds });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return run.stop();
}

/**
 * Load that runs until `stop()` (bounded by `maxSeconds`), to span a whole deploy: unthrottled unless
 * `requestsPerSecond` is given, bounded in connections.
 */
export function loadDuring(
  url: string,
  maxSeconds = 300,
  connections = LOAD_CONNECTIONS,
  requestsPerSecond?: number,
): { stop: () => Promise<LoadResult> } {
  return runLoad(url, { connections, maxSeconds, ...(requestsPerSecond !== undefined ? { requestsPerSecond } : {}) });
}

/** What a test asserts: every request sent got a 2xx. */
export function failures(result: LoadResult): {
  sent: number;
  failed: number;
  rate: number;
  slowestMs: number;
  failures: Readonly<Record<string, number>>;
} {
  return { sent: result.sent, failed: result.failed, rate: result.rate, slowestMs: result.slowestMs, failures: result.failures };
}
