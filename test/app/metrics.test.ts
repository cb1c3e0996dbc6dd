import { join } from "node:path";
import { mergeExpositions } from "../../app/src/exposition";
import { tempDir } from "../helpers/fixtures";
import { parseExposition, pidsWith, requestsByPid, scrape, total } from "../helpers/metrics";
import { APP_DIST, freePort, get, killAll, startNode, waitFor } from "../helpers/processes";

afterEach(killAll);

const DEFAULT_METRICS = [
  "nodejs_eventloop_lag_seconds",
  "nodejs_heap_size_used_bytes",
  "nodejs_gc_duration_seconds_count",
  "nodejs_active_handles_total",
  "process_resident_memory_bytes",
  "nodescale_process_restarts",
];

describe("merging the metrics of several processes", () => {
  const a = [
    "# HELP http_request_duration_seconds Time to answer",
    "# TYPE http_request_duration_seconds histogram",
    'http_request_duration_seconds_bucket{le="0.1",pid="1"} 2',
    'http_request_duration_seconds_count{pid="1"} 2',
    "",
    "# HELP up Up",
    "# TYPE up gauge",
    'up{pid="1"} 1',
  ].join("\n");
  const b = a.replaceAll('pid="1"', 'pid="2"');

  it("writes each family's HELP and TYPE once, then every process's samples", () => {
    const merged = mergeExpositions([a, b]);
    expect(merged.match(/# TYPE http_request_duration_seconds /g)).toHaveLength(1);
    expect(merged.match(/# HELP up /g)).toHaveLength(1);
    expect(merged.split("\n").slice(0, 6)).toEqual([
      "# HELP http_request_duration_seconds Time to answer",
      "# TYPE http_request_duration_seconds histogram",
      'http_request_duration_seconds_bucket{le="0.1",pid="1"} 2',
      'http_request_duration_seconds_count{pid="1"} 2',
      'http_request_duration_seconds_bucket{le="0.1",pid="2"} 2',
      'http_request_duration_seconds_count{pid="2"} 2',
    ]);
    expect(parseExposition(merged)).toHaveLength(6);
  });

  it("keeps a family that only one process has", () => {
    const merged = mergeExpositions([a, "# TYPE extra counter\nextra_total 3\n"]);
    expect(merged).toContain("# TYPE extra counter\nextra_total 3");
  });
});

describe("sample app metrics", () => {
  it("counts every request of the clustered primary's workers in one scrape, each series labelled with its process", async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    startNode(join(APP_DIST, "cluster.js"), { PORT: String(port), METRICS_PORT: String(metricsPort), WORKERS: "3" });
    await waitFor("three workers in one scrape", async () => {
      const ready = (await get(port, "/ready").catch(() => undefined))?.status === 200;
      const scraped = ready ? await scrape(metricsPort).catch(() => undefined) : undefined;
      return scraped !== undefined && pidsWith(scraped.samples, "nodejs_heap_size_used_bytes").size === 3 ? true : undefined;
    });
    const before = total(requestsByPid((await scrape(metricsPort)).samples));
    // Fresh connections, so the primary spreads them over every worker.
    const N = 90;
    const answeredBy = new Set<string>();
    for (let i = 0; i < N; i++) answeredBy.add(String((await get(port, "/")).json().pid));
    const after = await scrape(metricsPort);
    const byPid = requestsByPid(after.samples);
    expect(total(byPid) - before).toBe(N);
    expect(answeredBy.size).toBe(3);
    expect(new Set(byPid.keys())).toEqual(answeredBy);
    for (const name of DEFAULT_METRICS) expect([name, pidsWith(after.samples, name)]).toEqual([name, answeredBy]);
    // The metrics listener answers nothing else.
    expect((await get(metricsPort, "/")).status).toBe(404);
  }, 30_000);

  it("serves one process's metrics without a primary, and none at all without METRICS_PORT", async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const app = startNode(join(APP_DIST, "main.js"), { PORT: String(port), METRICS_PORT: String(metricsPort) });
    await waitFor("the app", async () => ((await get(port, "/ready").catch(() => undefined))?.status === 200 ? true : undefined));
    for (let i = 0; i < 5; i++) await get(port, "/");
    await get(port, "/nope");
    const { samples } = await scrape(metricsPort);
    expect(requestsByPid(samples)).toEqual(new Map([[String(app.child.pid), 5]]));
    // Unknown paths share one route label, so a scan cannot add series.
    expect(requestsByPid(samples, "other")).toEqual(new Map([[String(app.child.pid), 1]]));
    const none = await freePort();
    const quiet = startNode(join(APP_DIST, "main.js"), { PORT: String(none) });
    await waitFor("the second app", async () => ((await get(none, "/ready").catch(() => undefined))?.status === 200 ? true : undefined));
    expect(app.output()).toContain(`"msg":"metrics on 127.0.0.1:${metricsPort}/metrics"`);
    expect(quiet.output()).not.toContain("metrics on");
  }, 30_000);

  it("fork mode: when the process holding the metrics port dies, another takes the port over and answers for those left", async () => {
    // Three processes as PM2 runs them in fork mode (pm_id set: the app's PM2 role), one port each, one metrics port.
    const metricsPort = await freePort();
    const sockets = tempDir("nodescale-metrics-");
    const apps = [];
    for (const id of [0, 1, 2]) {
      const port = await freePort();
      const env = { PORT: String(port), METRICS_PORT: String(metricsPort), METRICS_SOCKET_DIR: sockets, pm_id: String(id) };
      apps.push({ port, app: startNode(join(APP_DIST, "main.js"), env) });
    }
    const pids = apps.map(({ app }) => String(app.child.pid));
    const scrapedPids = async () => pidsWith((await scrape(metricsPort)).samples, "nodejs_heap_size_used_bytes");
    await waitFor("one scrape for the three", async () => ((await scrapedPids().catch(() => new Set())).size === 3 ? true : undefined));
    expect(await scrapedPids()).toEqual(new Set(pids));
    const holder = apps.find(({ app }) => app.output().includes(`metrics on 127.0.0.1:${metricsPort}/metrics`));
    expect(holder).toBeDefined();
    // A crash: no exit handler runs, its socket file stays behind.
    holder?.app.child.kill("SIGKILL");
    await holder?.app.exited;
    const left = new Set(pids.filter((pid) => pid !== String(holder?.app.child.pid)));
    await waitFor("another process to answer for the two left", async () => {
      const now = await scrapedPids().catch(() => undefined);
      return now !== undefined && now.size === 2 ? now : undefined;
    });
    expect(await scrapedPids()).toEqual(left);
  }, 30_000);

  it("refuses METRICS_PORT equal to PORT, naming both", async () => {
    const port = await freePort();
    const app = startNode(join(APP_DIST, "main.js"), { PORT: String(port), METRICS_PORT: String(port) });
    expect(await app.exited).toBe(2);
    expect(app.output()).toBe(`nodescale-app: METRICS_PORT="${port}" is the app's PORT; metrics need a port of their own\n`);
  });
});

describe("sample app logs", () => {
  it("writes one JSON line per request with the request id it was given, and returns that id", async () => {
    const port = await freePort();
    const app = startNode(join(APP_DIST, "main.js"), { PORT: String(port) });
    await waitFor("the app", async () => ((await get(port, "/ready").catch(() => undefined))?.status === 200 ? true : undefined));
    const given = await getWithId(port, "/", "trace-42.a");
    const made = await getWithId(port, "/", undefined);
    const odd = await getWithId(port, "/", "not ok!");
    expect(given).toBe("trace-42.a");
    expect(made).toMatch(/^[0-9a-f-]{36}$/);
    expect(odd).toMatch(/^[0-9a-f-]{36}$/);
    await waitFor("three request lines", () => (requestLines(app.output()).length >= 3 ? true : undefined));
    const lines = requestLines(app.output());
    expect(lines.map((l) => l.reqId)).toEqual([given, made, odd]);
    expect(lines[0]).toMatchObject({ level: "info", pid: app.child.pid, method: "GET", path: "/", status: 200, msg: "request" });
    // Probes are not logged at the default level.
    await get(port, "/health");
    expect(requestLines(app.output())).toHaveLength(3);
  });
});

function requestLines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === "request");
}

async function getWithId(port: number, path: string, id: string | undefined): Promise<string> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, headers: id ? { "x-request-id": id } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(String(res.headers["x-request-id"])));
    });
    req.on("error", reject);
    req.end();
  });
}

// The PM2 modes (cluster, fork) are counted on the local stack: test/e2e/local-deploy.test.ts.
