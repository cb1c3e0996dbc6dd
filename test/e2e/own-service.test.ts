import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { failures, loadDuring } from "../helpers/load";
import { LocalDeployment, runAsync } from "../helpers/local-deploy";
import { freePort, get, ROOT, sleep } from "../helpers/processes";

// A third-party framework app (Express, with its dependency tree from npm), deployed by `cdktf deploy local` with
// NODESCALE_CONFIG pointing at it: the golden path carries the team's own service, not only the sample.
const FIXTURE = join(ROOT, "test", "fixtures", "express-app");
const local = new LocalDeployment("own", FIXTURE);
let appPort = 0;
let localPort = 0;
const url = () => `http://127.0.0.1:${localPort}/`;

beforeAll(async () => {
  appPort = await freePort();
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 3);
});

afterAll(() => local.cleanUp(), 180_000);

describe("your own service (an Express app from npm) on the local stack", () => {
  it("deploys it in cluster mode with its production dependencies; the health check sees every worker and the release", async () => {
    local.writeConfig({ service: { name: "orders", port: appPort, workers: 2 }, local: { port: localPort } });
    const output = local.deploy();
    expect(output).toMatch(
      /200 x 200; p50 [\d.]+ ms, p95 [\d.]+ ms; 2 distinct pid\(s\) \(expected 2\), 1 hostname\(s\), 1 machine\(s\); release [0-9a-f]{64}/,
    );
    const answer = await get(localPort, "/");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ service: "express-fixture", express: "5.2.1" });
    // The release holds production dependencies only: express, not the dev-only left-pad; the app's folder was never installed into.
    const release = join(local.machineDir(), readlinkSync(join(local.machineDir(), "current")));
    expect(existsSync(join(release, "node_modules", "express", "package.json"))).toBe(true);
    expect(existsSync(join(release, "node_modules", "left-pad"))).toBe(false);
    expect(readdirSync(local.appDir).sort()).toEqual(["package-lock.json", "package.json", "server.js"]);
  }, 240_000);

  it("rolls a restart of every worker (npm run local:reload) under steady load without a failed request", async () => {
    const before = local.pm2("m1", "pid").trim().split(/\s+/);
    const load = loadDuring(url());
    await sleep(1000);
    const run = await runAsync("bash", [join(ROOT, "scripts", "local-reload.sh")], local.env());
    await sleep(1000);
    const result = failures(await load.stop());
    expect(run.status).toBe(0);
    expect(result.sent).toBeGreaterThan(1000);
    expect(result.failed).toBe(0);
    const after = local.pm2("m1", "pid").trim().split(/\s+/);
    expect(after).toHaveLength(2);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 240_000);

  it("ships a new release of it under steady load without a failed request", async () => {
    local.newRelease("2", "server.js");
    const load = loadDuring(url());
    await sleep(1000);
    const run = await local.deployAsync();
    await sleep(1000);
    const result = failures(await load.stop());
    expect(run.status).toBe(0);
    expect(run.output).toMatch(/2 distinct pid\(s\) \(expected 2\)/);
    expect(result.sent).toBeGreaterThan(1000);
    expect(result.failed).toBe(0);
  }, 240_000);
});
