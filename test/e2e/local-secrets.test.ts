import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalDeployment } from "../helpers/local-deploy";
import { freePort, get, ROOT } from "../helpers/processes";

// Secrets on the local stack, for real: `env:` references read from the shell that deploys, into the processes'
// environment and nowhere else.
const local = new LocalDeployment("secrets");
const TOKEN = `tok-${process.pid}-${"s3cr3t".repeat(4)}`;
const ROTATED = `rot-${process.pid}-${"n3wv4lue".repeat(3)}`;
let appPort = 0;
let localPort = 0;

beforeAll(async () => {
  appPort = await freePort();
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 2);
});

afterAll(() => local.cleanUp(), 180_000);

/** The environment of every app process PM2 runs on the machine, as the kernel holds it. */
function processEnvironments(): string[] {
  const pids = local.pm2("m1", "pid").trim().split(/\s+/).filter(Boolean);
  expect(pids.length).toBeGreaterThan(0);
  return pids.map((pid) => readFileSync(`/proc/${pid}/environ`, "utf8"));
}

/** Every file under a folder whose content holds `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && statSync(p).size < 50_000_000 && readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

describe("secrets on the local stack (service.secrets with env: references)", () => {
  const config = () => ({
    service: { port: appPort, workers: 2, secrets: { API_TOKEN: "env:NODESCALE_E2E_TOKEN" } },
    local: { port: localPort, https: false },
  });

  it("stops at plan, naming the variable, when the shell that deploys lacks it", () => {
    local.writeConfig(config());
    const run = local.tryDeploy();
    expect(run.status).not.toBe(0);
    expect(run.output).toContain("not set in the shell that deploys: service.secrets.API_TOKEN (env:NODESCALE_E2E_TOKEN)");
    expect(run.output).not.toContain("nodescale local:");
  }, 180_000);

  it("puts the value in every process's environment, and in no file, state, synth output or log", async () => {
    local.shell = { NODESCALE_E2E_TOKEN: TOKEN };
    const output = local.deploy();
    expect(output).toMatch(/2 distinct pid\(s\) \(expected 2\)/);
    expect((await get(localPort, "/")).status).toBe(200);
    for (const environ of processEnvironments()) expect(environ.split("\0")).toContain(`API_TOKEN=${TOKEN}`);
    expect(output).not.toContain(TOKEN);
    // Only the 0600 secrets file the runner wrote, and PM2's own process dump, hold it.
    const secretsFile = join(local.machineDir(), "secrets.json");
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const holders = [...filesHolding(local.stateDir, TOKEN), ...filesHolding(local.outDir, TOKEN)];
    expect(holders.sort()).toEqual([join(local.machineDir(), "pm2", "dump.pm2"), secretsFile].sort());
    expect(readFileSync(join(ROOT, ".nodescale", `${local.instance}.tfstate`), "utf8")).not.toContain(TOKEN);
    expect(readFileSync(join(local.machineDir(), "ecosystem.config.js"), "utf8")).toContain('"API_TOKEN": process.env["API_TOKEN"]');
  }, 180_000);

  it("rolls a changed value out at the next deploy, on the same machine", async () => {
    const before = local.pm2("m1", "pid").trim().split(/\s+/);
    local.shell = { NODESCALE_E2E_TOKEN: ROTATED };
    const output = local.deploy();
    expect(output).not.toContain(ROTATED);
    for (const environ of processEnvironments()) expect(environ.split("\0")).toContain(`API_TOKEN=${ROTATED}`);
    const after = local.pm2("m1", "pid").trim().split(/\s+/);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 180_000);
});
