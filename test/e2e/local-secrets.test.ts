import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalDeployment } from "../helpers/local-deploy";
import { freePort, get, ROOT } from "../helpers/processes";

// Secrets on the local stack, for real: `env:` references read from the shell that deploys, into the processes'
// environment and nowhere else. The app answers with the SHA-256 of the API_TOKEN its process sees (never the value).
const local = new LocalDeployment("secrets", join(ROOT, "test", "fixtures", "secret-app"));
const TOKEN = `tok-${process.pid}-${"s3cr3t".repeat(4)}`;
const ROTATED = `rot-${process.pid}-${"n3wv4lue".repeat(3)}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
let appPort = 0;
let localPort = 0;

beforeAll(async () => {
  appPort = await freePort();
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 2);
});

afterAll(() => local.cleanUp(), 180_000);

/** What the processes report through Nginx: pid -> SHA-256 of the API_TOKEN each one sees. */
async function tokensSeen(): Promise<Map<number, string | null>> {
  const seen = new Map<number, string | null>();
  for (let i = 0; i < 40; i++) {
    const body = JSON.parse((await get(localPort, "/")).body) as { pid: number; apiTokenSha256: string | null };
    seen.set(body.pid, body.apiTokenSha256);
  }
  return seen;
}

/** The environment the PM2 daemon itself runs with, as the kernel holds it. */
function daemonEnvironment(): string {
  const pid = readFileSync(join(local.machineDir(), "pm2", "pm2.pid"), "utf8").trim();
  return readFileSync(`/proc/${pid}/environ`, "utf8");
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
    // Terraform wraps long messages: compare with the line breaks folded.
    expect(run.output.replace(/\s+/g, " ")).toContain(
      "not set in the shell that deploys: service.secrets.API_TOKEN (env:NODESCALE_E2E_TOKEN)",
    );
    expect(run.output).not.toContain("nodescale local:");
  }, 180_000);

  it("gives every process the value, and no file, state, synth output, log or the PM2 daemon", async () => {
    local.shell = { NODESCALE_E2E_TOKEN: TOKEN };
    const output = local.deploy();
    expect(output).toMatch(/2 distinct pid\(s\) \(expected 2\)/);
    const seen = await tokensSeen();
    expect(new Set(seen.values())).toEqual(new Set([sha256(TOKEN)]));
    expect(output).not.toContain(TOKEN);
    expect(daemonEnvironment()).not.toContain(TOKEN);
    // Only the 0600 secrets file the runner wrote, and PM2's own process dump, hold it.
    const secretsFile = join(local.machineDir(), "secrets.json");
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const holders = [...filesHolding(local.stateDir, TOKEN), ...filesHolding(local.outDir, TOKEN)];
    expect(holders.sort()).toEqual([join(local.machineDir(), "pm2", "dump.pm2"), secretsFile].sort());
    expect(readFileSync(join(ROOT, ".nodescale", `${local.instance}.tfstate`), "utf8")).not.toContain(TOKEN);
    expect(readFileSync(join(local.machineDir(), "ecosystem.config.js"), "utf8")).toContain('"API_TOKEN": process.env["API_TOKEN"]');
  }, 180_000);

  it("rolls a changed value out at the next deploy, on the same machine, with new processes", async () => {
    const before = local.pm2("m1", "pid").trim().split(/\s+/);
    local.shell = { NODESCALE_E2E_TOKEN: ROTATED };
    const output = local.deploy();
    expect(output).not.toContain(ROTATED);
    expect(output).toContain("nodescale-machine[m1]: reload hello-node");
    const seen = await tokensSeen();
    expect(new Set(seen.values())).toEqual(new Set([sha256(ROTATED)]));
    const after = local.pm2("m1", "pid").trim().split(/\s+/);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 180_000);
});
