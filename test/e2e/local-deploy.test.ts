import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { failures, steadyLoad } from "../helpers/load";
import { freePort, ROOT, sleep } from "../helpers/processes";

// `cdktf deploy local` for real: Terraform, Nginx and PM2 on 127.0.0.1, in a state folder of its own.
const INSTANCE = `e2e-${process.pid}`;
const STATE_DIR = join(ROOT, ".nodescale", INSTANCE);
const PM2 = join(ROOT, "node_modules", ".bin", "pm2");
const configDir = mkdtempSync(join(tmpdir(), "nodescale-e2e-"));
// Its own synth folder too, so its Terraform working directory never meets a developer's cdktf.out.
const OUT_DIR = join(configDir, "cdktf.out");
const configFile = join(configDir, "nodescale.config.json");
let appPort = 0;
let localPort = 0;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODESCALE_CONFIG: configFile,
    NODESCALE_LOCAL_INSTANCE: INSTANCE,
    CHECKPOINT_DISABLE: "1",
    CI: "1",
    FORCE_COLOR: "0",
  };
}

function cdktf(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(join(ROOT, "node_modules", ".bin", "cdktf"), [...args, "--output", OUT_DIR], {
    cwd: ROOT,
    env: env(),
    encoding: "utf8",
    timeout: 180_000,
  });
}

function writeConfig(mode: "cluster" | "fork", workers: number): void {
  writeFileSync(configFile, JSON.stringify({ service: { port: appPort, workers }, local: { port: localPort }, vm: { mode } }));
}

function deploy(): string {
  const run = cdktf("deploy", "local", "--auto-approve");
  const output = `${run.stdout}\n${run.stderr}`;
  if (run.status !== 0) throw new Error(`cdktf deploy local failed (${run.status}):\n${output.slice(-4000)}`);
  return output;
}

function pm2(...args: string[]): string {
  return spawnSync(PM2, args, { env: { ...process.env, PM2_HOME: join(STATE_DIR, "pm2") }, encoding: "utf8" }).stdout;
}

function reload(): SpawnSyncReturns<string> {
  return spawnSync("bash", [join(ROOT, "scripts", "local-reload.sh")], { env: env(), encoding: "utf8", timeout: 120_000 });
}

function healthCli(expectWorkers: number): { status: number | null; report: Record<string, unknown> } {
  const run = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "health", "cli.js"), "--url", `http://127.0.0.1:${localPort}`, "--expect-workers", String(expectWorkers), "--json"],
    { encoding: "utf8" },
  );
  return { status: run.status, report: JSON.parse(run.stdout) };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  appPort = await freePort();
  // Fork mode uses appPort..appPort+2; pick a loopback port for Nginx away from them.
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 3);
});

afterAll(() => {
  if (existsSync(STATE_DIR)) {
    cdktf("destroy", "local", "--auto-approve");
    // Last resort if destroy itself failed: stop what this test started.
    const pidFile = join(STATE_DIR, "nginx", "nginx.pid");
    if (existsSync(pidFile)) spawnSync("kill", ["-9", readFileSync(pidFile, "utf8").trim()]);
    if (existsSync(join(STATE_DIR, "pm2"))) pm2("kill");
    rmSync(STATE_DIR, { recursive: true, force: true });
  }
  rmSync(join(ROOT, ".nodescale", `${INSTANCE}.tfstate`), { force: true });
  rmSync(join(ROOT, ".nodescale", `${INSTANCE}.tfstate.backup`), { force: true });
  rmSync(configDir, { recursive: true, force: true });
}, 120_000);

describe("cdktf deploy local, end to end", () => {
  it("deploys cluster mode and the deploy's own health check sees every worker", () => {
    writeConfig("cluster", 2);
    const output = deploy();
    expect(output).toContain(`HEALTHY http://127.0.0.1:${localPort}: /health and /ready answered 200`);
    expect(output).toMatch(
      /200 x 200; p50 [\d.]+ ms, p95 [\d.]+ ms; 2 distinct pid\(s\) \(expected 2\), 1 hostname\(s\); release [0-9a-f]{64}/,
    );
  }, 180_000);

  it("passes the health CLI through Nginx with --expect-workers equal to the configured workers", () => {
    const { status, report } = healthCli(2);
    expect(status).toBe(0);
    expect(report).toMatchObject({ healthy: true, distinctPids: 2, statusCounts: { 200: 200 } });
    expect(healthCli(3)).toMatchObject({
      status: 1,
      report: { healthy: false, problem: "only 2 distinct process(es) answered 200 requests; expected 3" },
    });
  });

  it("rolls a cluster-mode reload under steady load without a failed request", async () => {
    const before = pm2("pid").trim().split(/\s+/);
    const load = steadyLoad(`http://127.0.0.1:${localPort}/`, 6);
    await sleep(1500);
    const reloaded = reload();
    const result = failures(await load);
    expect(reloaded.stdout).toContain("nodescale-reload: hello-node reloaded (cluster mode)");
    expect(reloaded.status).toBe(0);
    expect(result.sent).toBeGreaterThan(1000);
    expect(result.failed).toBe(0);
    const after = pm2("pid").trim().split(/\s+/);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 60_000);

  it("redeploys as fork mode with three ports and stays healthy", () => {
    writeConfig("fork", 3);
    const output = deploy();
    expect(output).toMatch(/3 distinct pid\(s\) \(expected 3\)/);
    expect(pm2("jlist")).toContain(`hello-node-${appPort + 2}`);
  }, 180_000);

  it("loses no request under load through a port-by-port reload and a kill -9 of one worker", async () => {
    const load = steadyLoad(`http://127.0.0.1:${localPort}/`, 8);
    await sleep(1500);
    const reloaded = reload();
    expect(reloaded.status).toBe(0);
    const victim = Number(pm2("pid", `hello-node-${appPort + 1}`).trim());
    process.kill(victim, "SIGKILL");
    const result = failures(await load);
    expect(result.sent).toBeGreaterThan(1000);
    expect(result.failed).toBe(0);
    expect(Number(pm2("pid", `hello-node-${appPort + 1}`).trim())).not.toBe(victim);
  }, 60_000);

  it("destroys everything: no Nginx, no PM2, no listening port, no state folder", async () => {
    const nginxPid = Number(readFileSync(join(STATE_DIR, "nginx", "nginx.pid"), "utf8"));
    const pm2Pid = Number(readFileSync(join(STATE_DIR, "pm2", "pm2.pid"), "utf8"));
    const run = cdktf("destroy", "local", "--auto-approve");
    expect(run.status).toBe(0);
    expect(alive(nginxPid)).toBe(false);
    expect(alive(pm2Pid)).toBe(false);
    for (const port of [localPort, appPort, appPort + 1, appPort + 2]) expect(await listening(port)).toBe(false);
    expect(existsSync(STATE_DIR)).toBe(false);
  }, 120_000);
});
