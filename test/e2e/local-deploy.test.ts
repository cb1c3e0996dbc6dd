import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request as requestHttp } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { join } from "node:path";
import { type ConnectionOptions, connect as connectTls, type TLSSocket } from "node:tls";
import { failures, LOAD_CONNECTIONS, loadDuring } from "../helpers/load";
import { alive, childrenOf, LocalDeployment, listening, runAsync } from "../helpers/local-deploy";
import { pidsWith, requestsByPid, scrape, total } from "../helpers/metrics";
import { freePort, get, ROOT, sleep, waitFor } from "../helpers/processes";

// `cdktf deploy local` for real, one machine: Terraform, Nginx and PM2 on 127.0.0.1, in a state folder of its own.
const local = new LocalDeployment("e2e");
const other = `${local.instance}-other`;
let appPort = 0;
let localPort = 0;
const url = () => `http://127.0.0.1:${localPort}/`;

function healthCli(expectWorkers: number): { status: number | null; report: Record<string, unknown> } {
  const run = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "health", "cli.js"), "--url", url(), "--expect-workers", String(expectWorkers), "--timeout", "3", "--json"],
    { encoding: "utf8" },
  );
  return { status: run.status, report: JSON.parse(run.stdout) };
}

/** npm run local:reload, without blocking the load this process generates. */
function reload(): Promise<{ status: number | null; output: string }> {
  return runAsync("bash", [join(ROOT, "scripts", "local-reload.sh")], local.env());
}

const HEALTHY_LINE = () => `HEALTHY http://127.0.0.1:${localPort}: /health and /ready answered 200`;

beforeAll(async () => {
  appPort = await freePort();
  // Fork mode uses appPort..appPort+2; pick a loopback port for Nginx away from them.
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 3);
});

/** sent / failed / rate per change under load, printed at the end for the record. */
const measured: Record<string, ReturnType<typeof failures>> = {};
/** Stops the load, records it under `change`, and returns it. */
async function measure(change: string, load: ReturnType<typeof loadDuring>): Promise<ReturnType<typeof failures>> {
  const result = failures(await load.stop());
  measured[change] = result;
  return result;
}

afterAll(() => {
  process.stdout.write(
    `one machine, ${LOAD_CONNECTIONS} connections, requests sent / failed / rate per change:\n${JSON.stringify(measured, null, 1)}\n`,
  );
  require("node:child_process").spawnSync("bash", ["-c"]);
  local.cleanUp([local.instance, other]);
}, 180_000);

/** A TLS handshake with the local listener; resolves with the protocol, rejects with the handshake's error. */
function tlsHandshake(port: number, options: ConnectionOptions): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", port, ...options }, () => {
      resolve(socket.getProtocol());
      socket.end();
    });
    socket.on("error", reject);
  });
}

describe("cdktf deploy local, one machine, end to end", () => {
  it("deploys cluster mode and the deploy's own health check sees every worker", () => {
    local.writeConfig({ service: { port: appPort, workers: 2 }, local: { port: localPort } });
    const output = local.deploy();
    expect(output).toContain(HEALTHY_LINE());
    // The deploy's second check: the same service through the TLS listener, trusting only the CA it generated.
    expect(output).toContain(`HEALTHY https://127.0.0.1:${local.httpsPort}: /health and /ready answered 200`);
    expect(output).toMatch(
      /200 x 200; p50 [\d.]+ ms, p95 [\d.]+ ms; 2 distinct pid\(s\) \(expected 2\), 1 hostname\(s\), 1 machine\(s\); release [0-9a-f]{64}/,
    );
    const { status, report } = healthCli(2);
    expect(status).toBe(0);
    expect(report).toMatchObject({ healthy: true, distinctPids: 2, statusCounts: { 200: 200 } });
    expect(healthCli(3)).toMatchObject({
      status: 1,
      report: { healthy: false, problem: "only 2 distinct process(es) answered 200 requests; expected 3" },
    });
  }, 180_000);

  it("answers one loopback metrics scrape for every PM2 cluster worker: N requests raise the counter by exactly N", async () => {
    const processes = new Set(local.pm2("m1", "pid").trim().split(/\s+/));
    const before = await scrape(local.metricsPort);
    expect(pidsWith(before.samples, "nodejs_eventloop_lag_seconds")).toEqual(processes);
    // Half through Nginx (its upstream connections are kept alive, so they may all meet one worker), half on fresh
    // connections to the app's port, which PM2's cluster hands to the workers in turn.
    const N = 120;
    const answeredBy = new Set<string>();
    for (let i = 0; i < N; i++) answeredBy.add(String((await get(i % 2 ? localPort : appPort, "/")).json().pid));
    const after = requestsByPid((await scrape(local.metricsPort)).samples);
    expect(total(after) - total(requestsByPid(before.samples))).toBe(N);
    expect(answeredBy).toEqual(processes);
    // Never public: Nginx answers 404 for the path itself.
    expect((await get(localPort, "/metrics")).status).toBe(404);
  }, 60_000);

  it("shows the live view (nodescale top) under tmux: one row per process, each with requests/s, while load runs", async () => {
    const processes = new Set(local.pm2("m1", "pid").trim().split(/\s+/));
    const session = `nodescale-top-${process.pid}`;
    const top = `${process.execPath} ${join(ROOT, "dist", "cli", "nodescale.js")} top --url http://127.0.0.1:${local.metricsPort}`;
    const tmux = (...args: string[]) => spawnSync("tmux", args, { encoding: "utf8" });
    expect(tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", top).status).toBe(0);
    const load = loadDuring(url(), 60, 8, 400);
    try {
      const rows = await waitFor(
        "a screen where every process serves",
        () => {
          const screen = tmux("capture-pane", "-p", "-t", session).stdout;
          const rows = [...screen.matchAll(/^(\d+)\s+(\S+)\s+([\d.]+)\s+([\d.-]+)\s+([\d.-]+)/gm)].map((m) => ({
            pid: m[1],
            rps: Number(m[3]),
          }));
          return rows.length === processes.size && rows.every((r) => processes.has(r.pid) && r.rps > 0) ? rows : undefined;
        },
        20_000,
      );
      expect(rows).toHaveLength(processes.size);
    } finally {
      tmux("kill-session", "-t", session);
      expect(failures(await load.stop()).failed).toBe(0);
    }
  }, 60_000);

  it("logs JSON lines with the request id Nginx passed on, the same id in the response and in Nginx's access log", async () => {
    const id = `e2e-${Date.now()}`;
    const answer = await new Promise<{ id: unknown; pid: number }>((resolve, reject) => {
      const req = requestHttp({ host: "127.0.0.1", port: localPort, path: "/", headers: { "x-request-id": id } }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ id: res.headers["x-request-id"], pid: JSON.parse(body).pid }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(answer.id).toBe(id);
    const jsonLines = (file: string) =>
      readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logs = join(local.machineDir("m1"), "logs");
    // Every line PM2 wrote for the app is JSON; the request's line names the id and the process that answered.
    const appLine = await waitFor("the app's line", () => jsonLines(join(logs, "hello-node.out.log")).find((l) => l.reqId === id));
    expect(appLine).toMatchObject({ level: "info", pid: answer.pid, method: "GET", path: "/", status: 200 });
    // Nginx buffers its access log for up to a second.
    const access = await waitFor("Nginx's line", () =>
      jsonLines(join(local.machineDir("m1"), "nginx", "logs", "access.log")).find((l) => l.request_id === id),
    );
    expect(access).toMatchObject({ uri: "/", status: 200, upstream_status: "200" });
  }, 30_000);

  it("serves the same service over HTTPS with the CA it generated: HTTP/2, TLS 1.3, security headers", async () => {
    const httpsUrl = `https://127.0.0.1:${local.httpsPort}`;
    const ca = readFileSync(local.caCert(), "utf8");
    const session = connectHttp2(httpsUrl, { ca });
    try {
      await once(session, "connect");
      expect(session.alpnProtocol).toBe("h2");
      expect((session.socket as TLSSocket).getProtocol()).toBe("TLSv1.3");
      const answer = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/" });
        let body = "";
        let headers: Record<string, unknown> = {};
        req.on("response", (h) => (headers = h));
        req.on("data", (d: Buffer) => (body += d.toString()));
        req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
        req.on("error", reject);
        req.end();
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ machine: "m1" });
      expect(answer.headers).toMatchObject({
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "strict-origin-when-cross-origin",
      });
    } finally {
      session.close();
    }
    // The server itself refuses TLS 1.1 and a non-AEAD cipher (its alerts, with a client that would accept either);
    // TLS 1.2 stays on for older clients; the system's CAs do not vouch for the local one.
    const old = { ca, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" } as const;
    await expect(tlsHandshake(local.httpsPort, old)).rejects.toThrow("tlsv1 alert protocol version");
    await expect(tlsHandshake(local.httpsPort, { ca, maxVersion: "TLSv1.2", ciphers: "AES128-SHA" })).rejects.toThrow(
      "alert handshake failure",
    );
    await expect(tlsHandshake(local.httpsPort, { ca, maxVersion: "TLSv1.2" })).resolves.toBe("TLSv1.2");
    await expect(tlsHandshake(local.httpsPort, {})).rejects.toThrow("unable to verify the first certificate");
    const run = spawnSync(
      process.execPath,
      [join(ROOT, "dist", "health", "cli.js"), "--url", httpsUrl, "--ca", local.caCert(), "--timeout", "3"],
      {
        encoding: "utf8",
      },
    );
    expect(run.stdout).toContain(`HEALTHY ${httpsUrl}: /health and /ready answered 200`);
    expect(run.status).toBe(0);
  });

  it("scales cluster mode 2 -> 3 under steady load without a failed request, and the check sees 3", async () => {
    local.writeConfig({ service: { port: appPort, workers: 3 }, local: { port: localPort } });
    const load = loadDuring(url());
    await sleep(1000);
    const run = await local.deployAsync();
    const result = await measure("cluster workers 2 -> 3", load);
    const output = run.output;
    expect(run.status).toBe(0);
    expect(output).toContain("scale hello-node 2 -> 3");
    expect(output).toMatch(/3 distinct pid\(s\) \(expected 3\)/);
    expect(result.sent).toBeGreaterThan(1000);
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
  }, 180_000);

  it("runs the health check again when nothing changed (never 'No changes' over a dead service)", () => {
    const output = local.deploy();
    expect(output).toContain("nodescale-machine[m1]: up to date on release");
    expect(output).toContain(HEALTHY_LINE());
  }, 180_000);

  it("rolls a cluster-mode restart (npm run local:reload) under steady load without a failed request", async () => {
    const before = local.pm2("m1", "pid").trim().split(/\s+/);
    const load = loadDuring(url());
    await sleep(1000);
    const reloaded = await reload();
    const result = await measure("rolling restart (npm run local:reload)", load);
    expect(reloaded.output).toContain("nodescale local: rolling restart done on 1 machine(s)");
    expect(reloaded.status).toBe(0);
    expect(result.sent).toBeGreaterThan(1000);
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
    const after = local.pm2("m1", "pid").trim().split(/\s+/);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 60_000);

  it("repairs a killed PM2 daemon: the next deploy brings the processes back and proves them", async () => {
    const daemon = local.pid(join(local.machineDir(), "pm2", "pm2.pid"));
    process.kill(daemon, "SIGKILL");
    for (const child of childrenOf(daemon)) process.kill(child, "SIGKILL");
    await sleep(500);
    expect((await get(localPort, "/")).status).toBe(502);
    const output = local.deploy();
    expect(output).toContain("nodescale-machine[m1]: PM2 daemon started");
    expect(output).toMatch(/3 distinct pid\(s\) \(expected 3\)/);
  }, 180_000);

  it("repairs a dead Nginx master whose orphaned worker still holds the port", async () => {
    const master = local.pid(join(local.machineDir(), "nginx", "nginx.pid"));
    const [worker] = childrenOf(master);
    process.kill(master, "SIGKILL");
    await sleep(300);
    expect(alive(worker)).toBe(true);
    const output = local.deploy();
    expect(output).toContain(`killed an Nginx worker orphaned by a dead master (pid ${worker})`);
    expect(output).toContain(`Nginx started on 127.0.0.1:${localPort}`);
    expect(output).toContain(HEALTHY_LINE());
    expect(alive(worker)).toBe(false);
  }, 180_000);

  it("refuses a release that never becomes ready: the deploy fails naming why, the old release keeps serving", async () => {
    const main = join(local.appDir, "dist", "main.js");
    const good = readFileSync(main, "utf8");
    const servedBefore = (await get(localPort, "/")).json().release;
    // Listens, but its readiness never answers 200.
    writeFileSync(
      main,
      'require("node:http").createServer((q, s) => { s.statusCode = 503; s.end(); }).listen(Number(process.env.PORT), process.env.HOST);\n',
    );
    const load = loadDuring(url());
    await sleep(1000);
    const run = await local.deployAsync();
    const result = await measure("refused release", load);
    writeFileSync(main, good);
    expect(run.status).not.toBe(0);
    expect(run.output).toMatch(
      /machine m1: release [0-9a-f]{12} did not become ready: http:\/\/127\.0\.0\.1:\d+\/ready answered 503 \(waited 20s\); nothing was switched, the machine keeps serving release [0-9a-f]{12}/,
    );
    expect((await get(localPort, "/")).json().release).toBe(servedBefore);
    expect(result.sent).toBeGreaterThan(1000);
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
    // The next good deploy goes through.
    expect(local.deploy()).toContain(HEALTHY_LINE());
  }, 240_000);

  it("refuses a port another program holds before switching anything: the deploy names the holder, the old release keeps serving", async () => {
    const held = await freePort();
    const holder = createServer().listen(held, "127.0.0.1");
    await once(holder, "listening");
    try {
      const servedBefore = (await get(localPort, "/")).json().release;
      local.writeConfig({ service: { port: held, workers: 3 }, local: { port: localPort } });
      const run = local.tryDeploy();
      expect(run.status).not.toBe(0);
      expect(run.output).toContain(`machine m1: port ${held} on 127.0.0.1 is in use by pid ${process.pid} (`);
      expect(run.output).toMatch(
        /not by this service: release [0-9a-f]{12} cannot start there; nothing was switched, the machine keeps serving release [0-9a-f]{12}/,
      );
      expect((await get(localPort, "/")).json().release).toBe(servedBefore);
    } finally {
      holder.close();
      local.writeConfig({ service: { port: appPort, workers: 3 }, local: { port: localPort } });
    }
    expect(local.deploy()).toContain(HEALTHY_LINE());
  }, 240_000);

  it("switches cluster -> fork on one machine (ports move, the client-facing Nginx reloads) under unthrottled load without a failed request", async () => {
    local.writeConfig({ service: { port: appPort, workers: 3 }, local: { port: localPort }, vm: { mode: "fork" } });
    const load = loadDuring(url());
    await sleep(1000);
    const run = await local.deployAsync();
    const result = await measure("cluster -> fork (client-facing reload)", load);
    const output = run.output;
    expect(run.status).toBe(0);
    expect(output).toContain('note: this change moves ports, so the client-facing Nginx reloads: answers say "Connection: close"');
    expect(result.sent).toBeGreaterThan(1000);
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
    expect(output).toMatch(/3 distinct pid\(s\) \(expected 3\)/);
    expect(local.pm2("m1", "jlist")).toContain(`hello-node-${appPort + 2}`);
    // One scrape answers for the three fork-mode processes, whichever of them holds the metrics port.
    const processes = new Set(local.pm2("m1", "pid").trim().split(/\s+/));
    expect(processes.size).toBe(3);
    const before = await scrape(local.metricsPort);
    const N = 90;
    for (let i = 0; i < N; i++) expect((await get(localPort, "/")).status).toBe(200);
    const after = requestsByPid((await scrape(local.metricsPort)).samples);
    expect(total(after) - total(requestsByPid(before.samples))).toBe(N);
    expect(pidsWith(before.samples, "process_resident_memory_bytes")).toEqual(processes);
  }, 180_000);

  it("deploys another instance from the same checkout and synth folder, then this one again", async () => {
    const port = await freePort();
    writeFileSync(
      local.configFile,
      JSON.stringify({ service: { port: appPort + 10, workers: 1, source: "app" }, local: { port, httpsPort: local.httpsPort + 1 } }),
    );
    const output = local.deploy(other);
    expect(output).not.toContain("Backend configuration changed");
    expect(output).toContain(`HEALTHY http://127.0.0.1:${port}`);
    expect(local.destroy(other).status).toBe(0);
    local.writeConfig({ service: { port: appPort, workers: 3 }, local: { port: localPort }, vm: { mode: "fork" } });
    expect(local.deploy()).toContain(HEALTHY_LINE());
  }, 240_000);

  it("destroys everything after a crash: no Nginx, no PM2, no orphan, no listening port, no state folder", async () => {
    // The crash: Nginx's master and PM2's daemon die; a worker and the fork-mode apps are orphaned.
    const master = local.pid(join(local.machineDir(), "nginx", "nginx.pid"));
    const daemon = local.pid(join(local.machineDir(), "pm2", "pm2.pid"));
    const orphans = [...childrenOf(master), ...childrenOf(daemon)];
    process.kill(master, "SIGKILL");
    process.kill(daemon, "SIGKILL");
    await sleep(300);
    // The Nginx worker outlives its master (some fork-mode apps exit when PM2's IPC channel closes, some not).
    expect(orphans.filter(alive).length).toBeGreaterThan(0);
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-down.sh")], { env: local.env(), encoding: "utf8", timeout: 180_000 });
    expect(run.status).toBe(0);
    expect(orphans.filter(alive)).toEqual([]);
    for (const port of [localPort, local.httpsPort, appPort, appPort + 1, appPort + 2])
      expect(await listening("127.0.0.1", port)).toBe(false);
    expect(existsSync(local.stateDir)).toBe(false);
  }, 240_000);
});
