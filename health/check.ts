import { request } from "node:http";
import { request as httpsRequest } from "node:https";

export interface HealthOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** @default "/health" */
  readonly healthPath?: string;
  /** @default "/ready" */
  readonly readyPath?: string;
  /** How long to wait for /health and /ready to answer 200. @default 60 */
  readonly timeoutSeconds?: number;
  /** Requests in the burst sent after the service is up. @default 200 */
  readonly burstRequests?: number;
  /** Requests in flight at once during the burst. @default 16 */
  readonly concurrency?: number;
  /** Fail unless at least this many distinct processes answered the burst. */
  readonly expectWorkers?: number;
  /** Fail unless at least this many distinct hosts (pods, machines) answered the burst. */
  readonly expectHostnames?: number;
  /** Fail unless at least this many distinct machines (the `machine` each answer names) answered the burst. */
  readonly expectMachines?: number;
  /** Wait until `/` reports this release, then fail if any burst answer comes from another one. */
  readonly expectRelease?: string;
  /** PEM certificate(s) of the CA that signed an https service's certificate (e.g. the local stack's CA). @default - the system's CAs */
  readonly ca?: string;
  /**
   * Host name to ask for (the `Host` header, and the TLS server name the certificate must match) when the URL holds
   * another address, such as a load balancer's own name in front of a host rule. @default - the URL's host
   */
  readonly host?: string;
}

/** How to reach the service: the CA to trust and the host to ask for. */
interface Reach {
  readonly ca?: string;
  readonly host?: string;
}

/**
 * Why a health or ready path is not one, or undefined. Paths are resolved against the service's URL, so `//other/x`
 * or `http://other/` would send the check (and its verdict) to another host.
 */
export function pathProblem(name: string, path: string): string | undefined {
  if (!/^\/(?!\/)[^\s?#\\]*$/.test(path))
    return `${name} must be a path on the service's host such as "/ready", got ${JSON.stringify(path)}`;
  return undefined;
}

export interface HealthReport {
  readonly healthy: boolean;
  readonly url: string;
  readonly waitedSeconds: number;
  readonly problem?: string;
  readonly statusCounts: Readonly<Record<string, number>>;
  readonly p50Ms?: number;
  readonly p95Ms?: number;
  readonly distinctPids: number;
  readonly distinctHostnames: number;
  readonly distinctMachines: number;
  readonly expectWorkers?: number;
  readonly expectHostnames?: number;
  readonly expectMachines?: number;
  readonly expectRelease?: string;
  /** Releases seen in the burst, with how many answers each. */
  readonly releases: Readonly<Record<string, number>>;
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Which process gave an answer, if it says. */
interface Identity {
  readonly pid?: number;
  readonly hostname?: string;
  readonly machine?: string;
  readonly release?: string;
}

/**
 * The process behind an answer: from the X-NodeScale-* headers that NodeScale's preload adds to any app's
 * answers on a VM, else from a JSON body that reports them (the sample app, a container without the preload).
 */
function identify(answer: Answer): Identity {
  const header = (name: string) => {
    const value = answer.headers[`x-nodescale-${name}`];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  let body: { pid?: unknown; hostname?: unknown; machine?: unknown; release?: unknown } = {};
  try {
    const parsed = JSON.parse(answer.body) as unknown;
    if (parsed !== null && typeof parsed === "object") body = parsed;
  } catch {
    // A non-JSON answer names no process in its body.
  }
  const pid = header("pid") !== undefined ? Number(header("pid")) : typeof body.pid === "number" ? body.pid : undefined;
  return {
    pid: pid !== undefined && Number.isInteger(pid) ? pid : undefined,
    hostname: header("host") ?? (typeof body.hostname === "string" ? body.hostname : undefined),
    // As the sample app reports it: the machine the deploy named, else the host.
    machine: header("machine") ?? (typeof body.machine === "string" ? body.machine : header("host")),
    release: header("release") ?? (typeof body.release === "string" ? body.release : undefined),
  };
}

function get(url: URL, timeoutMs: number, reach: Reach = {}): Promise<Answer> {
  const started = performance.now();
  const send = url.protocol === "https:" ? httpsRequest : request;
  const headers: Record<string, string> = { "user-agent": "nodescale-health" };
  if (reach.host !== undefined) headers.host = reach.host;
  // The certificate must name the host asked for, not the address dialled.
  const tls = url.protocol === "https:" ? { ca: reach.ca, servername: reach.host } : {};
  return new Promise((resolve, reject) => {
    // A fresh connection per request, so the proxy and PM2 spread the burst as they would for separate clients.
    const req = send(url, { method: "GET", agent: false, timeout: timeoutMs, headers, ...tls }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started, headers: res.headers }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Waits with backoff for liveness and readiness, then sends a burst and checks how many processes answered. */
export async function checkHealth(options: HealthOptions): Promise<HealthReport> {
  const base = new URL(options.url);
  const healthPath = options.healthPath ?? "/health";
  const readyPath = options.readyPath ?? "/ready";
  const timeoutSeconds = options.timeoutSeconds ?? 60;
  for (const [name, path] of [
    ["healthPath", healthPath],
    ["readyPath", readyPath],
  ]) {
    const problem = pathProblem(name, path);
    if (problem !== undefined) throw new TypeError(problem);
  }
  const reach: Reach = { ca: options.ca, host: options.host };
  const started = performance.now();
  const waited = () => round((performance.now() - started) / 1000);
  const empty = {
    url: options.url,
    statusCounts: {},
    distinctPids: 0,
    distinctHostnames: 0,
    distinctMachines: 0,
    expectWorkers: options.expectWorkers,
    expectHostnames: options.expectHostnames,
    expectMachines: options.expectMachines,
    expectRelease: options.expectRelease,
    releases: {},
  };

  const root = new URL("/", base);
  // Why the service is not ready yet, or undefined once liveness, readiness (and the release) are right.
  const notReadyBecause = async (): Promise<string | undefined> => {
    for (const path of [healthPath, readyPath]) {
      const target = new URL(path, base);
      try {
        const answer = await get(target, 5_000, reach);
        if (answer.status !== 200) return `${target.href} answered ${answer.status}`;
      } catch (err) {
        return `${target.href}: ${(err as Error).message}`;
      }
    }
    if (options.expectRelease === undefined) return undefined;
    // A rollout may still be under way: the old release answering is "not yet", not "healthy".
    try {
      const seen = identify(await get(root, 5_000, reach)).release;
      if (seen !== options.expectRelease) {
        return `${root.href} still serves release ${JSON.stringify(seen ?? null)}, expected ${JSON.stringify(options.expectRelease)}`;
      }
    } catch (err) {
      return `${root.href}: ${(err as Error).message}`;
    }
    return undefined;
  };

  let delayMs = 250;
  for (;;) {
    const problem = await notReadyBecause();
    if (problem === undefined) break;
    if (performance.now() - started + delayMs > timeoutSeconds * 1000) {
      return { ...empty, healthy: false, waitedSeconds: waited(), problem: `not healthy: ${problem}` };
    }
    await sleep(delayMs);
    delayMs = Math.min(delayMs * 2, 2_000);
  }
  const waitedSeconds = waited();

  // A rollout still under way (an old release or a machine not yet in rotation) is "not yet"; bad statuses
  // are a verdict at once.
  for (;;) {
    const { report, problem, converging } = await burst(root, options, waitedSeconds, reach);
    if (problem === undefined) return { ...report, healthy: true };
    if (!converging || performance.now() - started + 2_000 > timeoutSeconds * 1000) {
      return { ...report, waitedSeconds: converging ? waited() : waitedSeconds, healthy: false, problem };
    }
    await sleep(2_000);
  }
}

async function burst(
  root: URL,
  options: HealthOptions,
  waitedSeconds: number,
  reach: Reach,
): Promise<{ report: Omit<HealthReport, "healthy" | "problem">; problem?: string; converging: boolean }> {
  const total = options.burstRequests ?? 200;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 16, total));
  const statusCounts: Record<string, number> = {};
  const latencies: number[] = [];
  const pids = new Set<number>();
  const hosts = new Set<string>();
  const machines = new Set<string>();
  const releases: Record<string, number> = {};
  let sent = 0;
  const lane = async () => {
    while (sent < total) {
      sent++;
      try {
        const answer = await get(root, 10_000, reach);
        statusCounts[answer.status] = (statusCounts[answer.status] ?? 0) + 1;
        latencies.push(answer.ms);
        const who = identify(answer);
        if (who.pid !== undefined) pids.add(who.pid);
        if (who.hostname !== undefined) hosts.add(who.hostname);
        if (who.machine !== undefined) machines.add(who.machine);
        const release = who.release ?? "(none)";
        releases[release] = (releases[release] ?? 0) + 1;
      } catch (err) {
        const key = `error: ${(err as Error).message}`;
        statusCounts[key] = (statusCounts[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  latencies.sort((a, b) => a - b);
  const failures = Object.entries(statusCounts).filter(([status]) => status !== "200");
  const report = {
    url: options.url,
    waitedSeconds,
    statusCounts,
    p50Ms: latencies.length ? round(percentile(latencies, 50)) : undefined,
    p95Ms: latencies.length ? round(percentile(latencies, 95)) : undefined,
    distinctPids: pids.size,
    distinctHostnames: hosts.size,
    distinctMachines: machines.size,
    expectWorkers: options.expectWorkers,
    expectHostnames: options.expectHostnames,
    expectMachines: options.expectMachines,
    expectRelease: options.expectRelease,
    releases,
  };
  if (failures.length > 0) {
    const [status, count] = failures[0];
    return { report, converging: false, problem: `${count} of ${total} burst requests to ${root.href} failed (${status})` };
  }
  const otherReleases = Object.entries(releases).filter(([release]) => release !== options.expectRelease);
  if (options.expectRelease !== undefined && otherReleases.length > 0) {
    const stray = otherReleases.reduce((sum, [, count]) => sum + count, 0);
    return {
      report,
      converging: true,
      problem: `${stray} of ${total} answers came from another release (${otherReleases.map(([r]) => JSON.stringify(r)).join(", ")}), expected ${JSON.stringify(options.expectRelease)}`,
    };
  }
  if (options.expectWorkers !== undefined && pids.size < options.expectWorkers) {
    return {
      report,
      converging: true,
      problem: `only ${pids.size} distinct process(es) answered ${total} requests; expected ${options.expectWorkers}`,
    };
  }
  if (options.expectMachines !== undefined && machines.size < options.expectMachines) {
    return {
      report,
      converging: true,
      problem: `only ${machines.size} distinct machine(s) answered ${total} requests; expected ${options.expectMachines}`,
    };
  }
  if (options.expectHostnames !== undefined && hosts.size < options.expectHostnames) {
    return {
      report,
      converging: true,
      problem: `only ${hosts.size} distinct host(s) answered ${total} requests; expected ${options.expectHostnames}`,
    };
  }
  return { report, converging: false };
}

/** One human line (two when healthy: the verdict and the burst figures). */
export function formatReport(report: HealthReport): string {
  if (!report.healthy) return `UNHEALTHY ${report.url}: ${report.problem} (waited ${report.waitedSeconds} s)`;
  const statuses = Object.entries(report.statusCounts)
    .map(([status, count]) => `${count} x ${status}`)
    .join(", ");
  const expected = report.expectWorkers !== undefined ? ` (expected ${report.expectWorkers})` : "";
  const expectedHosts = report.expectHostnames !== undefined ? ` (expected ${report.expectHostnames})` : "";
  const machines = report.distinctMachines > 0 ? `, ${report.distinctMachines} machine(s)` : "";
  const expectedMachines = report.expectMachines !== undefined ? ` (expected ${report.expectMachines})` : "";
  const release = report.expectRelease !== undefined ? `; release ${report.expectRelease}` : "";
  return [
    `HEALTHY ${report.url}: /health and /ready answered 200 after ${report.waitedSeconds} s`,
    `  burst: ${statuses}; p50 ${report.p50Ms} ms, p95 ${report.p95Ms} ms; ${report.distinctPids} distinct pid(s)${expected}, ${report.distinctHostnames} hostname(s)${expectedHosts}${machines}${expectedMachines}${release}`,
  ].join("\n");
}

export interface MachineWaitOptions {
  /** Base URL of the load balancer. */
  readonly url: string;
  /** The `machine` an answer must name (a new machine's host name). */
  readonly machine: string;
  /** ...and the release it must report. @default - any */
  readonly release?: string;
  /** @default 900 */
  readonly timeoutSeconds?: number;
  /** As in HealthOptions. */
  readonly ca?: string;
  /** As in HealthOptions. */
  readonly host?: string;
}

/**
 * Waits until the load balancer sends a request to one particular machine (it passed the balancer's own
 * health check and is in rotation): what a rolling replacement waits for before it replaces the next one.
 */
export async function waitForMachine(options: MachineWaitOptions): Promise<{ ok: boolean; line: string }> {
  const root = new URL("/", options.url);
  const timeoutSeconds = options.timeoutSeconds ?? 900;
  const started = performance.now();
  let last = "no answer yet";
  while (performance.now() - started < timeoutSeconds * 1000) {
    try {
      const answer = await get(root, 5_000, { ca: options.ca, host: options.host });
      const who = identify(answer);
      if (answer.status === 200 && who.machine === options.machine && (options.release === undefined || who.release === options.release)) {
        return {
          ok: true,
          line: `IN ROTATION ${options.machine} behind ${options.url} after ${round((performance.now() - started) / 1000)} s`,
        };
      }
      last = `last answer ${answer.status} from ${JSON.stringify(who.machine ?? null)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  return { ok: false, line: `NOT IN ROTATION ${options.machine} behind ${options.url} after ${timeoutSeconds} s (${last})` };
}
