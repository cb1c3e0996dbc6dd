import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { failures, LOAD_CONNECTIONS, loadDuring } from "../helpers/load";
import { alive, LocalDeployment, listening } from "../helpers/local-deploy";
import { freePort, get, sleep } from "../helpers/processes";

// Two simulated machines (127.0.1.1, 127.0.1.2), each its own Nginx and PM2, behind the local load balancer:
// every day-two change rolls machine by machine under load as fast as the stack answers (a bounded number of
// connections), and no request fails.
const local = new LocalDeployment("e2e-lb");
let appPort = 0;
let localPort = 0;
const url = () => `http://127.0.0.1:${localPort}/`;
/** sent / failed per scenario, printed at the end for the record. */
const measured: Record<string, ReturnType<typeof failures> & { deploySeconds?: number }> = {};

type Config = Parameters<LocalDeployment["writeConfig"]>[0];
const config = (service: Record<string, unknown>, mode: "cluster" | "fork" = "cluster"): Config => ({
  service: { port: appPort, ...service },
  local: { port: localPort, machines: 2 },
  vm: { mode },
});

/** Deploys `next` (or a prepared change) under unthrottled load (LOAD_CONNECTIONS connections); returns the deploy's output. */
async function changeUnderLoad(scenario: string, prepare: () => void): Promise<string> {
  prepare();
  const load = loadDuring(url());
  await sleep(1000);
  const started = Date.now();
  const run = await local.deployAsync();
  const seconds = (Date.now() - started) / 1000;
  const result = failures(await load.stop());
  measured[scenario] = { ...result, deploySeconds: Math.round(seconds * 10) / 10 };
  if (run.status !== 0) throw new Error(`cdktf deploy local failed (${run.status}):\n${run.output.slice(-4000)}`);
  // The load ran through the whole deploy, not around it, at a rate no throttle would allow.
  expect(result.sent).toBeGreaterThan(200 * seconds);
  expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
  const output = run.output;
  expect(output).toMatch(/2 machine\(s\) \(expected 2\); release [0-9a-f]{64}/);
  return output;
}

beforeAll(async () => {
  appPort = await freePort();
  do localPort = await freePort();
  while (localPort >= appPort && localPort <= appPort + 210);
});

afterAll(() => {
  process.stdout.write(
    `local.machines = 2, ${LOAD_CONNECTIONS} connections, requests sent / failed / rate per change:\n${JSON.stringify(measured, null, 1)}\n`,
  );
  local.cleanUp();
}, 180_000);

describe("cdktf deploy local with two machines behind the local load balancer", () => {
  it("deploys both machines; every machine answers through the balancer with its own name", async () => {
    local.writeConfig(config({ workers: 2 }));
    const output = local.deploy();
    expect(output).toContain(`nodescale-machine[m1]: Nginx started on 127.0.1.1:${localPort}`);
    expect(output).toContain(`nodescale-machine[m2]: Nginx started on 127.0.1.2:${localPort}`);
    expect(output).toContain(`nodescale local: load balancer: Nginx started on 127.0.0.1:${localPort}`);
    expect(output).toMatch(/200 x 200; .*, 2 machine\(s\) \(expected 2\); release/);
    // TLS ends at the balancer, where clients connect.
    expect(output).toContain(`HEALTHY https://127.0.0.1:${local.httpsPort}: /health and /ready answered 200`);
    const machines = new Set<unknown>();
    for (let i = 0; i < 20; i++) machines.add((await get(localPort, "/")).json().machine);
    expect([...machines].sort()).toEqual(["m1", "m2"]);
  }, 180_000);

  it("rolls a new release machine by machine: each leaves rotation, converges, comes back; no request fails", async () => {
    const output = await changeUnderLoad("new release", () => local.newRelease("2"));
    const steps = output.match(/nodescale local: m\d: (out of rotation|back in rotation)/g);
    expect(steps).toEqual([
      "nodescale local: m1: out of rotation",
      "nodescale local: m1: back in rotation",
      "nodescale local: m2: out of rotation",
      "nodescale local: m2: back in rotation",
    ]);
  }, 240_000);

  // The configs are functions: the ports are picked in beforeAll, after this table is built.
  it.each([
    ["cluster workers up (2 -> 3)", () => config({ workers: 3 }), "scale hello-node 2 -> 3"],
    ["cluster workers down (3 -> 1)", () => config({ workers: 1 }), "scale hello-node 3 -> 1"],
    ["cluster -> fork", () => config({ workers: 2 }, "fork"), "remove hello-node"],
    ["fork workers up (2 -> 3)", () => config({ workers: 3 }, "fork"), "start hello-node-"],
    ["fork workers down (3 -> 2)", () => config({ workers: 2 }, "fork"), "remove hello-node-"],
    ["port change (fork)", () => config({ workers: 2, port: appPort + 100 }, "fork"), "remove hello-node-"],
    ["fork -> cluster", () => config({ workers: 2, port: appPort + 100 }), "start hello-node;"],
    ["port change (cluster)", () => config({ workers: 2, port: appPort + 200 }), "reload hello-node"],
    ["a changed Nginx setting", () => config({ workers: 2, port: appPort + 200, maxBodySizeMiB: 20 }), "site.conf"],
  ])(
    "converges %s under unthrottled load without a failed request",
    async (scenario, next, change) => {
      const output = await changeUnderLoad(scenario, () => local.writeConfig(next()));
      expect(output).toContain(change);
    },
    240_000,
  );

  it("refuses a release that never becomes ready without taking a machine out of rotation", async () => {
    const main = join(local.appDir, "dist", "main.js");
    const good = readFileSync(main, "utf8");
    writeFileSync(main, "process.exit(3);\n");
    const load = loadDuring(url());
    await sleep(1000);
    const started = Date.now();
    const run = await local.deployAsync();
    const seconds = (Date.now() - started) / 1000;
    const result = failures(await load.stop());
    writeFileSync(main, good);
    measured["refused release"] = { ...result, deploySeconds: Math.round(seconds * 10) / 10 };
    expect(run.status).not.toBe(0);
    // The load ran through the whole refused deploy (canary started, failed, removed), not around it.
    expect(result.sent).toBeGreaterThan(200 * seconds);
    expect(run.output).toMatch(/machine m1: release [0-9a-f]{12} did not become ready: .*; nothing was switched/);
    expect(run.output).not.toContain("m1: out of rotation");
    expect(run.output).not.toContain("nodescale-machine[m2]");
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
  }, 240_000);

  it("loses no GET when every process of one machine is killed (kill -9) under unthrottled load, and the next deploy brings the machine back", async () => {
    const victims = local.processesOf("m1");
    const load = loadDuring(url());
    await sleep(1500);
    for (const pid of victims) process.kill(pid, "SIGKILL");
    await sleep(4000);
    const result = failures(await load.stop());
    measured["kill -9 of machine m1"] = result;
    expect(victims.filter(alive)).toEqual([]);
    expect(await listening("127.0.1.1", localPort)).toBe(false);
    expect(result.sent).toBeGreaterThan(1000);
    expect({ failed: result.failed, failures: result.failures }).toEqual({ failed: 0, failures: {} });
    const output = local.deploy();
    expect(output).toContain("nodescale-machine[m1]: PM2 daemon started");
    expect(output).toContain("nodescale-machine[m2]: up to date on release");
    expect(output).toMatch(/2 machine\(s\) \(expected 2\)/);
  }, 240_000);

  it("moves from two machines to one, saying so before anything stops, and serves from the one machine", async () => {
    local.writeConfig({ ...config({ workers: 2, port: appPort + 200, maxBodySizeMiB: 20 }), local: { port: localPort, machines: 1 } });
    const output = local.deploy();
    const note = output.indexOf(
      `local.machines 2 -> 1 moves 127.0.0.1:${localPort} between a machine and the load balancer: requests fail for a few seconds`,
    );
    expect(note).toBeGreaterThanOrEqual(0);
    expect(output.indexOf("stopped 2 machine(s) and the load balancer")).toBeGreaterThan(note);
    expect(output.indexOf(`nodescale-machine[m1]: Nginx started on 127.0.0.1:${localPort}`)).toBeGreaterThan(note);
    expect(await listening("127.0.1.2", localPort)).toBe(false);
    expect((await get(localPort, "/")).json().machine).toBe("m1");
  }, 180_000);

  it("destroys both machines and the balancer: no listening port left", async () => {
    expect(local.destroy().status).toBe(0);
    for (const [host, port] of [
      ["127.0.0.1", localPort],
      ["127.0.0.1", local.httpsPort],
      ["127.0.1.1", localPort],
      ["127.0.1.2", localPort],
      ["127.0.1.1", appPort + 200],
      ["127.0.1.2", appPort + 200],
    ] as const) {
      expect(await listening(host, port)).toBe(false);
    }
  }, 180_000);
});
