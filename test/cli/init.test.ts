import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InitError, initConfig, serviceNameFrom } from "../../cli/init";
import { loadConfig, resolveApp } from "../../stacks/config";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

const EXPRESS = join(ROOT, "test", "fixtures", "express-app");
const CLI = join(ROOT, "dist", "cli", "nodescale.js");

/** A copy of the Express fixture, as a team's existing service would be. */
function service(): string {
  const dir = join(tempDir("nodescale-init-"), "orders");
  cpSync(EXPRESS, dir, { recursive: true });
  return dir;
}
const nodescale = (args: string[], cwd: string) => spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8" });

describe("nodescale init", () => {
  it("writes a config that the deploy's own loader accepts, pointing at the service and its entry", () => {
    const dir = service();
    const result = initConfig({ dir });
    expect(result.file).toBe(join(dir, "nodescale.config.json"));
    const written = JSON.parse(readFileSync(result.file, "utf8"));
    expect(written).toEqual({
      $schema: expect.stringMatching(/nodescale\.schema\.json$/),
      service: { name: "express-fixture", source: ".", start: "server.js" },
    });
    // The $schema path resolves from the config's folder, so editors find it.
    expect(existsSync(join(dir, written.$schema))).toBe(true);
    const { dir: appDir, loaded } = resolveApp(loadConfig({ NODESCALE_CONFIG: result.file }, ROOT), ROOT);
    expect(appDir).toBe(dir);
    expect(loaded.spec).toMatchObject({ name: "express-fixture", start: "server.js", signalsReady: false });
    expect(result.warnings).toEqual([]);
    expect(result.next[0]).toBe(
      `NODESCALE_CONFIG=${result.file} npm --prefix ${ROOT} run local          # deploy on this machine (Nginx + PM2 on 127.0.0.1), ends with the health check`,
    );
  });

  it("never overwrites an existing config without --force", () => {
    const dir = service();
    const file = join(dir, "nodescale.config.json");
    writeFileSync(file, '{"service":{"name":"mine"}}\n');
    expect(() => initConfig({ dir })).toThrow(
      new InitError(`${file} exists; nothing was written. Run "nodescale init --force" to replace it.`),
    );
    expect(readFileSync(file, "utf8")).toBe('{"service":{"name":"mine"}}\n');
    initConfig({ dir, force: true });
    expect(JSON.parse(readFileSync(file, "utf8")).service.name).toBe("express-fixture");
  });

  it("refuses a folder that is not a Node.js service, writing nothing", () => {
    const dir = tempDir("nodescale-init-empty-");
    expect(() => initConfig({ dir })).toThrow(
      `${dir} has no package.json: run "nodescale init" in your Node.js service's folder (or name it: nodescale init <folder>)`,
    );
    expect(existsSync(join(dir, "nodescale.config.json"))).toBe(false);
  });

  it("refuses an app with no entry file, naming the fields, writing nothing", () => {
    const dir = service();
    writeFileSync(join(dir, "package.json"), '{"name":"orders"}');
    rmSync(join(dir, "server.js"));
    expect(() => initConfig({ dir })).toThrow(/^service\.start: /);
    expect(existsSync(join(dir, "nodescale.config.json"))).toBe(false);
  });

  it("refuses a name that is not a DNS label with the schema's own message", () => {
    expect(() => initConfig({ dir: service(), name: "Bad Name" })).toThrow(
      `service.name: "Bad Name" is not allowed: must be a DNS-1123 label: lower-case letters, digits and '-', starting with a letter, at most 63 characters`,
    );
  });

  it("says before the first deploy that a lock file is missing", () => {
    const dir = service();
    rmSync(join(dir, "package-lock.json"));
    expect(initConfig({ dir }).warnings).toEqual([
      'no package-lock.json: run "npm install" once; a release is built with "npm ci" from the lock file',
    ]);
  });

  it.each([
    ["pnpm-lock.yaml", "pnpm"],
    ["yarn.lock", "Yarn"],
  ])("refuses an app whose only lock file is %s, saying plainly that %s is not supported yet, writing nothing", (file, manager) => {
    const dir = service();
    rmSync(join(dir, "package-lock.json"));
    writeFileSync(join(dir, file), "# a lock file\n");
    expect(() => initConfig({ dir })).toThrow(
      new InitError(
        `${dir} is locked by ${manager} (${file}) and has no package-lock.json: NodeScale builds a release with "npm ci" from package-lock.json and does not support pnpm or Yarn yet. Nothing was written. To deploy this app now, create a package-lock.json ("npm install --package-lock-only") and commit it beside ${file}.`,
      ),
    );
    expect(existsSync(join(dir, "nodescale.config.json"))).toBe(false);
    // With an npm lock file beside it, npm's is the one a release installs from: init goes on.
    cpSync(join(EXPRESS, "package-lock.json"), join(dir, "package-lock.json"));
    expect(initConfig({ dir }).warnings).toEqual([]);
  });

  it("makes a service name from any package name", () => {
    expect(serviceNameFrom("@acme/Orders_API")).toBe("orders-api");
    expect(serviceNameFrom("9lives")).toBe("lives");
    expect(serviceNameFrom("@@@")).toBe("service");
    expect(serviceNameFrom(`a${"b".repeat(80)}`)).toHaveLength(63);
  });
});

describe("the nodescale command", () => {
  it("init in the service's folder prints what it wrote and the next commands, exit 0", () => {
    const dir = service();
    const run = nodescale(["init"], dir);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(
      `nodescale: wrote ${join(dir, "nodescale.config.json")} (service "express-fixture", runs server.js)\nnext:\n`,
    );
    expect(run.stdout).toContain("run local:down");
  });

  it("exits 1 with one line and no stack trace when the config exists", () => {
    const dir = service();
    writeFileSync(join(dir, "nodescale.config.json"), "{}");
    const run = nodescale(["init"], dir);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `nodescale: cannot init: ${join(dir, "nodescale.config.json")} exists; nothing was written. Run "nodescale init --force" to replace it.\n`,
    );
    expect(nodescale(["init", "--force"], dir).status).toBe(0);
  });

  it("exits 2 on an unknown command or option, with the usage", () => {
    const dir = service();
    const unknown = nodescale(["deploy"], dir);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^nodescale: unknown command "deploy"\nusage: nodescale init/);
    expect(nodescale(["init", "--frce"], dir).status).toBe(2);
  });

  it("runs the health check as `nodescale health`", () => {
    const run = nodescale(["health", "--url", "nope"], ROOT);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^nodescale-health: --url must be an http\(s\) URL, got "nope"/);
  });
});
