import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_METRICS_PORT } from "../constructs/service/schema";
import { parseExposition, type Sample } from "./exposition";

/** What one scrape says about one process. */
export interface ProcessState {
  readonly pid: string;
  readonly worker: string;
  /** Requests answered so far (every route and status). */
  readonly requests: number;
  /** Cumulative request-duration buckets (upper bound in seconds -> count), every route and status summed. */
  readonly buckets: ReadonlyMap<number, number>;
  readonly loopLagP99Seconds: number | undefined;
  readonly residentBytes: number | undefined;
  readonly restarts: number | undefined;
}

/** One row of the live view: a process over the last interval. */
export interface TopRow {
  readonly pid: string;
  readonly worker: string;
  readonly requestsPerSecond: number;
  readonly p50Ms: number | undefined;
  readonly p95Ms: number | undefined;
  readonly loopLagMs: number | undefined;
  readonly memoryMiB: number | undefined;
  readonly restarts: number | undefined;
}

const DURATION = "http_request_duration_seconds";

/** Every process one scrape names (by its pid label). Pure. */
export function processStates(samples: readonly Sample[]): Map<string, ProcessState> {
  type Building = { -readonly [K in keyof ProcessState]: ProcessState[K] } & { buckets: Map<number, number> };
  const found = new Map<string, Building>();
  const of = (s: Sample): Building => {
    const pid = s.labels.pid;
    let p = found.get(pid);
    if (p === undefined) {
      p = {
        pid,
        worker: s.labels.worker ?? "",
        requests: 0,
        buckets: new Map(),
        loopLagP99Seconds: undefined,
        residentBytes: undefined,
        restarts: undefined,
      };
      found.set(pid, p);
    }
    return p;
  };
  for (const s of samples) {
    if (s.labels.pid === undefined) continue;
    if (s.name === `${DURATION}_count`) of(s).requests += s.value;
    else if (s.name === `${DURATION}_bucket`) {
      const le = s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      const b = of(s).buckets;
      b.set(le, (b.get(le) ?? 0) + s.value);
    } else if (s.name === "nodejs_eventloop_lag_p99_seconds") of(s).loopLagP99Seconds = s.value;
    else if (s.name === "process_resident_memory_bytes") of(s).residentBytes = s.value;
    else if (s.name === "nodescale_process_restarts") of(s).restarts = s.value;
  }
  return found;
}

/**
 * The q-quantile of the requests between two cumulative histograms, in seconds, interpolated inside its bucket
 * (as Prometheus' histogram_quantile does); undefined when no request fell in between. Pure.
 */
export function quantileBetween(
  before: ReadonlyMap<number, number> | undefined,
  after: ReadonlyMap<number, number>,
  q: number,
): number | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((le) => (after.get(le) ?? 0) - (before?.get(le) ?? 0));
  const total = delta[delta.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (delta[i] < rank) continue;
    const upper = bounds[i];
    const lower = i === 0 ? 0 : bounds[i - 1];
    if (upper === Number.POSITIVE_INFINITY) return lower;
    const below = i === 0 ? 0 : delta[i - 1];
    const inBucket = delta[i] - below;
    return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return undefined;
}

/** The rows for the interval between two scrapes `seconds` apart; a process new in `after` counts from zero. Pure. */
export function topRows(before: ReadonlyMap<string, ProcessState>, after: ReadonlyMap<string, ProcessState>, seconds: number): TopRow[] {
  return [...after.values()]
    .map((p) => {
      const prev = before.get(p.pid);
      const ms = (q: number) => {
        const s = quantileBetween(prev?.buckets, p.buckets, q);
        return s === undefined ? undefined : s * 1000;
      };
      return {
        pid: p.pid,
        worker: p.worker,
        requestsPerSecond: Math.max(0, p.requests - (prev?.requests ?? 0)) / seconds,
        p50Ms: ms(0.5),
        p95Ms: ms(0.95),
        loopLagMs: p.loopLagP99Seconds === undefined ? undefined : p.loopLagP99Seconds * 1000,
        memoryMiB: p.residentBytes === undefined ? undefined : p.residentBytes / 1024 / 1024,
        restarts: p.restarts,
      };
    })
    .sort((a, b) => a.worker.localeCompare(b.worker, undefined, { numeric: true }) || Number(a.pid) - Number(b.pid));
}

const cell = (v: number | undefined, digits: number) => (v === undefined ? "-" : v.toFixed(digits));

/** The screen: a header and one row per process, then the total. Pure. */
export function renderTop(url: string, rows: readonly TopRow[], at: Date): string {
  const header = ["PID", "WORKER", "REQ/S", "P50 MS", "P95 MS", "LAG P99 MS", "RSS MIB", "RESTARTS"];
  const lines = rows.map((r) => [
    r.pid,
    r.worker,
    r.requestsPerSecond.toFixed(1),
    cell(r.p50Ms, 2),
    cell(r.p95Ms, 2),
    cell(r.loopLagMs, 2),
    cell(r.memoryMiB, 1),
    r.restarts === undefined ? "-" : String(r.restarts),
  ]);
  const total = rows.reduce((sum, r) => sum + r.requestsPerSecond, 0);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cols: string[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [
    `nodescale top  ${url}  ${at.toISOString()}  (every 1 s; Ctrl-C quits)`,
    "",
    format(header),
    ...lines.map(format),
    "",
    `${rows.length} process(es), ${total.toFixed(1)} requests/s in all`,
  ].join("\n");
}

/** The local stack's metrics address, from the config file (NODESCALE_CONFIG or ./nodescale.config.json). */
export function defaultMetricsUrl(cwd: string, env: NodeJS.ProcessEnv): string {
  const file = env.NODESCALE_CONFIG ?? join(cwd, "nodescale.config.json");
  let port = DEFAULT_METRICS_PORT;
  try {
    const config = JSON.parse(readFileSync(file, "utf8")) as { service?: { metricsPort?: number } };
    port = config.service?.metricsPort ?? port;
  } catch {
    // No config: the default port.
  }
  return `http://127.0.0.1:${port}`;
}

async function scrape(url: string): Promise<Map<string, ProcessState>> {
  const res = await fetch(`${url.replace(/\/+$/, "")}/metrics`, { signal: AbortSignal.timeout(3_000) });
  if (res.status !== 200) throw new Error(`GET ${url}/metrics answered ${res.status}`);
  return processStates(parseExposition(await res.text()));
}

/** Refreshes the view every second until interrupted; a failed scrape shows why and tries again. */
export async function runTop(url: string, out: NodeJS.WriteStream, intervalMs = 1_000): Promise<never> {
  let before = new Map<string, ProcessState>();
  let at = Date.now();
  for (;;) {
    let screen: string;
    try {
      const after = await scrape(url);
      const now = Date.now();
      screen = renderTop(url, topRows(before, after, Math.max(0.001, (now - at) / 1000)), new Date(now));
      before = after;
      at = now;
    } catch (err) {
      screen = `nodescale top  ${url}\n\ncannot read metrics: ${(err as Error).message}\n(is the service up? over SSH: ssh -L 9464:127.0.0.1:9464 <machine>)`;
    }
    // Clear the screen and home the cursor, then draw.
    out.write(`\x1b[2J\x1b[H${screen}\n`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
