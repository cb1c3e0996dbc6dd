import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MACHINE_INSTALL_MARKER, withoutDependencies } from "../../constructs/release/machine-install";
import { packRelease } from "../../constructs/release/release-pack";
import { readTarGz } from "../../constructs/release/tar";
import { copySampleApp, tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

// The machine agent as every machine runs it; required as a module, as the local target does.
const { Machine, AgentError } = require(join(ROOT, "templates", "vm", "machine-agent.js"));

/** The sample app as a release: its build output, lock file and its two dependencies (prom-client, pino). */
function sampleRelease() {
  const appDir = copySampleApp(join(tempDir("nodescale-sample-copy-"), "app"));
  return packRelease({ appDir, cacheDir: join(ROOT, ".nodescale", "releases") });
}

function unpackWith(bundle: { data: Buffer; sha256: string }) {
  const base = tempDir("nodescale-machine-");
  const file = join(base, "release.tar.gz");
  writeFileSync(file, bundle.data);
  const lines: string[] = [];
  const machine = new Machine({ machine: "m1", baseDir: base }, (line: string) => lines.push(line));
  return { base, lines, install: () => machine.installRelease(file, bundle.sha256) as string };
}

describe("a release whose dependencies the machine installs (a Droplet's 64 KiB user data)", () => {
  const full = sampleRelease();
  const lean = withoutDependencies(full);

  it("keeps the sources, build output and lock file, leaves node_modules out and says so in a marker file", () => {
    expect(full.files.some((f) => f.startsWith("node_modules/prom-client/"))).toBe(true);
    expect(lean.files.filter((f) => f.startsWith("node_modules"))).toEqual([]);
    expect(lean.files).toEqual([...full.files.filter((f) => !f.startsWith("node_modules/")), MACHINE_INSTALL_MARKER].sort());
    expect(readTarGz(lean.data).find((e) => e.path === "package-lock.json")).toMatchObject({ kind: "file" });
    // Reproducible like any release, and another release id than the full one.
    expect(withoutDependencies(full).sha256).toBe(lean.sha256);
    expect(lean.sha256).not.toBe(full.sha256);
    expect(lean.data.length).toBeLessThan(full.data.length / 10);
  });

  it("reads back every entry of a release exactly as packed (long node_modules paths included)", () => {
    const entries = readTarGz(full.data);
    expect(entries.map((e) => e.path).sort()).toEqual([...full.files]);
    const main = entries.find((e) => e.path === "dist/main.js");
    expect(main?.kind === "file" && main.data.equals(readFileSync(join(ROOT, "app", "dist", "main.js")))).toBe(true);
  });

  it("is installed by the machine agent from the lock file, and then runs", () => {
    const { lines, install } = unpackWith(lean);
    const dir = install();
    expect(lines).toContain(`release ${lean.sha256.slice(0, 12)}: installing its locked dependencies (npm ci --omit=dev --ignore-scripts)`);
    const locked = JSON.parse(readFileSync(join(ROOT, "app", "package-lock.json"), "utf8")).packages["node_modules/prom-client"].version;
    expect(JSON.parse(readFileSync(join(dir, "node_modules", "prom-client", "package.json"), "utf8")).version).toBe(locked);
    const run = spawnSync(process.execPath, ["-e", 'require("./dist/metrics.js"); require("./dist/log.js"); console.log("loaded")'], {
      cwd: dir,
      encoding: "utf8",
    });
    expect(run.stdout).toBe("loaded\n");
  }, 120_000);

  it("refuses a release whose lock file does not match what the registry serves, leaving no half-installed folder", () => {
    const entries = readTarGz(lean.data).map((e) => {
      if (e.path !== "package-lock.json" || e.kind !== "file") return e;
      const lock = JSON.parse(e.data.toString("utf8"));
      lock.packages["node_modules/prom-client"].integrity = `sha512-${Buffer.alloc(64, 1).toString("base64")}`;
      return { ...e, data: Buffer.from(JSON.stringify(lock)) };
    });
    const { reproducibleTarGz } = require("../../constructs/release/tar");
    const data: Buffer = reproducibleTarGz(entries);
    const sha256 = require("node:crypto").createHash("sha256").update(data).digest("hex");
    const { base, install } = unpackWith({ data, sha256 });
    expect(install).toThrow(AgentError);
    expect(install).toThrow(/npm ci failed \(exit 1\)/);
    expect(existsSync(join(base, "releases")) ? readdirSync(join(base, "releases")) : []).toEqual([]);
  }, 120_000);
});
