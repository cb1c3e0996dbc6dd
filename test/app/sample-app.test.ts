import { Agent, request } from "node:http";
import { connect, createServer, type Server } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { failures, steadyLoad } from "../helpers/load";
import { APP_DIST, freePort, get, killAll, pidsSeen, sleep, startNode, waitFor } from "../helpers/processes";

const MAIN = join(APP_DIST, "main.js");
const CLUSTER = join(APP_DIST, "cluster.js");

afterEach(killAll);

function agentGet(agent: Agent, port: number, path: string): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** One request as raw bytes on a fresh socket: the status and the whole answer as text. */
function rawRequest(port: number, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(request));
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString()));
    socket.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on("error", reject);
  });
}

const rawGet = (port: number, path: string) => rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);

async function startApp(script: string, env: Record<string, string> = {}) {
  const port = await freePort();
  // The benchmark endpoint is on in these tests (it is off unless asked for).
  const app = startNode(script, { PORT: String(port), CPU_ENDPOINT: "on", ...env });
  await waitFor("the app to answer /ready", async () => ((await get(port, "/ready")).status === 200 ? true : undefined));
  return { port, app };
}

describe("sample app, single process", () => {
  it("answers /, /health and /ready with JSON naming its process and release", async () => {
    const { port, app } = await startApp(MAIN, { NODESCALE_RELEASE: "r-123" });
    const root = (await get(port, "/")).json();
    expect(root).toMatchObject({
      pid: app.child.pid,
      hostname: hostname(),
      machine: hostname(),
      worker: expect.any(String),
      release: "r-123",
    });
    expect((await get(port, "/health")).status).toBe(200);
    expect((await get(port, "/ready")).json()).toMatchObject({ status: "ready" });
    expect((await get(port, "/nope")).status).toBe(404);
  });

  it("reports the machine it was told it is, for several simulated machines on one host", async () => {
    const { port } = await startApp(MAIN, { NODESCALE_MACHINE: "m2" });
    expect((await get(port, "/")).json()).toMatchObject({ machine: "m2", hostname: hostname() });
  });

  it("burns CPU on /cpu and rejects a bad or unbounded ms with 400", async () => {
    const { port } = await startApp(MAIN, { MAX_CPU_MS: "500" });
    const answer = await get(port, "/cpu?ms=20");
    expect(answer.status).toBe(200);
    expect(answer.json()).toMatchObject({ ms: 20, offload: false });
    expect((await get(port, "/cpu?ms=abc")).json()).toEqual({ error: 'ms must be a whole number of milliseconds (1-500), got "abc"' });
    expect((await get(port, "/cpu?ms=501")).json()).toEqual({ error: "ms must be between 1 and 500, got 501" });
    expect((await get(port, "/cpu")).status).toBe(400);
  });

  it("keeps /cpu, a benchmark tool, off unless CPU_ENDPOINT=on", async () => {
    const { port } = await startApp(MAIN, { CPU_ENDPOINT: "" });
    expect(await get(port, "/cpu?ms=5")).toMatchObject({ status: 404 });
  });

  it("bounds the offload queue: past it, 503 with Retry-After instead of waiting without end", async () => {
    const { port } = await startApp(MAIN, { CPU_THREADS: "1", CPU_QUEUE: "1" });
    const answers = await Promise.all([1, 2, 3].map(() => rawGet(port, "/cpu?ms=600&offload=1")));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 200, 503]);
    const busy = answers.find((a) => a.status === 503);
    expect(busy?.text).toContain("retry-after: 1\r\n");
    expect(busy?.text).toContain('{"error":"busy: too much CPU work queued, retry later"}');
  });

  it.each(["//", "//evil.example/x", "http://[", "*"])(
    "answers a malformed request target %j with 400, never an internal error",
    async (target) => {
      const { port } = await startApp(MAIN);
      const answer = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      expect(answer.status).toBe(400);
      expect(answer.text).not.toMatch(/Invalid URL|TypeError|internal error/);
    },
  );

  // Order of answers, not timings: /health either overtakes the CPU work or waits behind it.
  async function answerOrder(port: number, cpuPaths: string[]): Promise<string[]> {
    const order: string[] = [];
    const heavy = cpuPaths.map((path) =>
      get(port, path, 10_000).then((answer) => {
        order.push(`cpu offload=${answer.json().offload}`);
      }),
    );
    await sleep(200);
    await get(port, "/health", 10_000).then(() => order.push("health"));
    await Promise.all(heavy);
    return order;
  }

  it("answers /health while offloaded CPU work still runs in worker threads", async () => {
    const { port } = await startApp(MAIN, { CPU_THREADS: "2" });
    expect(await answerOrder(port, ["/cpu?ms=1500&offload=1", "/cpu?ms=1500&offload=1"])).toEqual([
      "health",
      "cpu offload=true",
      "cpu offload=true",
    ]);
  });

  it("holds /health behind inline CPU work, which is why offload exists", async () => {
    const { port } = await startApp(MAIN);
    expect(await answerOrder(port, ["/cpu?ms=1200"])).toEqual(["cpu offload=false", "health"]);
  });

  it("finishes a slow in-flight request on SIGTERM while /ready answers 503, then exits 0", async () => {
    const { port, app } = await startApp(MAIN, { SHUTDOWN_GRACE_SECONDS: "10", CPU_THREADS: "1" });
    // A client already connected (keep-alive) is how a load balancer sees readiness flip during the drain.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await agentGet(agent, port, "/ready")).status).toBe(200);
    const slow = get(port, "/cpu?ms=1500&offload=1", 10_000);
    await sleep(200);
    app.child.kill("SIGTERM");
    await sleep(100);
    const readyDuring = await agentGet(agent, port, "/ready");
    const finished = await slow;
    expect(readyDuring).toEqual({ status: 503, connection: "close" });
    expect(finished.status).toBe(200);
    expect(await app.exited).toBe(0);
    expect(app.output()).toContain("SIGTERM: draining (grace 10s)");
    agent.destroy();
  });

  it("exits 1 at once on a second signal during the drain", async () => {
    const { port, app } = await startApp(MAIN, { SHUTDOWN_GRACE_SECONDS: "30", CPU_THREADS: "1" });
    const slow = get(port, "/cpu?ms=1900&offload=1", 10_000).catch(() => undefined);
    await sleep(200);
    app.child.kill("SIGINT");
    await sleep(100);
    app.child.kill("SIGINT");
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain("second SIGINT during shutdown: exiting now");
    await slow;
  });

  it("forces an exit when in-flight work outlasts the grace period", async () => {
    const { port, app } = await startApp(MAIN, { SHUTDOWN_GRACE_SECONDS: "1", CPU_THREADS: "1" });
    const slow = get(port, "/cpu?ms=2000&offload=1", 10_000).catch(() => undefined);
    await sleep(200);
    app.child.kill("SIGTERM");
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain("grace period of 1s over with 1 open connection(s): forcing exit");
    await slow;
  });

  it.each([
    [{ PORT: "abc" }, 'nodescale-app: PORT="abc" is not a whole number (allowed: 0-65535)'],
    [{ PORT: "70000" }, 'nodescale-app: PORT="70000" is out of range (allowed: 0-65535)'],
    [{ PORT: "3000", WORKERS: "0" }, 'nodescale-app: WORKERS="0" is out of range (allowed: 1-64)'],
  ])("refuses a bad environment %j with one line naming the variable", async (env, message) => {
    for (const script of [MAIN, CLUSTER]) {
      const app = startNode(script, env);
      expect(await app.exited).toBe(2);
      expect(app.output()).toBe(`${message}\n`);
    }
  });
});

describe("sample app, clustered", () => {
  it("spreads requests over WORKERS processes", async () => {
    const { port } = await startApp(CLUSTER, { WORKERS: "3" });
    await waitFor("3 distinct workers", async () => ((await pidsSeen(port, 12)).size === 3 ? true : undefined));
  });

  it("replaces a killed worker", async () => {
    const { port, app } = await startApp(CLUSTER, { WORKERS: "2" });
    const before = await waitFor("2 workers", async () => {
      const pids = await pidsSeen(port, 10);
      return pids.size === 2 ? pids : undefined;
    });
    const victim = [...before][0];
    process.kill(victim, "SIGKILL");
    const after = await waitFor("a replacement worker", async () => {
      const pids = await pidsSeen(port, 10);
      return pids.size === 2 && !pids.has(victim) ? pids : undefined;
    });
    expect(after.size).toBe(2);
    expect(app.output()).toMatch(new RegExp(`worker \\d \\(pid ${victim}\\) exited \\(code null, signal SIGKILL\\); restarting in 100 ms`));
  });

  it("rolls workers one at a time on SIGHUP without losing a request under steady load", async () => {
    const { port, app } = await startApp(CLUSTER, { WORKERS: "2" });
    const before = await pidsSeen(port, 10);
    const load = steadyLoad(`http://127.0.0.1:${port}/`, 4);
    await sleep(1000);
    app.child.kill("SIGHUP");
    const result = failures(await load);
    expect(app.output()).toContain("rolling restart done");
    expect(result.sent).toBeGreaterThan(1000);
    expect(result.failed).toBe(0);
    const after = await pidsSeen(port, 10);
    expect([...after].some((pid) => before.has(pid))).toBe(false);
  });

  it("stops restarting a crash-looping worker, says so, and exits 1 when none is left", async () => {
    // Another program holds the port, so every worker fails to listen and exits: a real crash loop.
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    try {
      const app = startNode(CLUSTER, { PORT: String(port), WORKERS: "1" });
      expect(await app.exited).toBe(1);
      expect(app.output()).toMatch(/worker 1 crashed 5 times in a row \(last: code 1, signal null\); not restarting it/);
      expect(app.output()).toContain("every worker is crash-looping: exiting 1");
    } finally {
      blocker.close();
    }
  });

  it("shuts every worker down gracefully on SIGTERM", async () => {
    const { app } = await startApp(CLUSTER, { WORKERS: "2" });
    // One worker answering /ready is not both: wait until the primary says every worker listens.
    await waitFor("both workers listening", async () => (app.output().includes("2 worker(s) listening") ? true : undefined));
    app.child.kill("SIGTERM");
    expect(await app.exited).toBe(0);
    expect(app.output().match(/SIGTERM: draining/g)).toHaveLength(2);
    expect(app.output()).toContain("all workers stopped");
  });

  it("runs a single process under PM2 (pm_id set), leaving clustering to PM2", async () => {
    const { port, app } = await startApp(CLUSTER, { WORKERS: "3", pm_id: "7" });
    expect((await pidsSeen(port, 6)).size).toBe(1);
    expect((await get(port, "/")).json()).toMatchObject({ pid: app.child.pid, worker: "7" });
  });
});
