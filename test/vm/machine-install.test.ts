import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
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

  it("runs npm ci as the app's user (here: nobody), never root, and leaves node_modules root's", () => {
    const base = tempDir("nodescale-machine-user-");
    // As the machine's /opt/nodescale: others may pass through (mkdtemp makes it 0700).
    chmodSync(base, 0o755);
    const file = join(base, "release.tar.gz");
    writeFileSync(file, lean.data);
    const lines: string[] = [];
    const machine = new Machine({ machine: "m1", baseDir: base, pm2: { user: "nobody" } }, (line: string) => lines.push(line));
    const dir = machine.installRelease(file, lean.sha256) as string;
    const owner = (path: string) => statSync(path).uid;
    expect(owner(join(dir, "node_modules", "prom-client", "package.json"))).toBe(0);
    expect(owner(join(dir, "node_modules"))).toBe(0);
    // Nothing of the staging folder is left beside the release.
    expect(readdirSync(join(base, "releases"))).toEqual([lean.sha256]);
  }, 120_000);

  it("npm ci cannot read what only root can: a release depending on a root-only package file fails to install", () => {
    // A package tarball only root may read, and a release locked to it: root's npm would install it, the app user's
    // cannot (EACCES), which shows who runs npm.
    const rootOnly = tempDir("nodescale-root-only-");
    const pkg = join(rootOnly, "pkg");
    mkdirSync(pkg);
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "root-only", version: "1.0.0" }));
    const packed = spawnSync("npm", ["pack", "--silent", "--pack-destination", rootOnly], { cwd: pkg, encoding: "utf8" });
    const tarball = join(rootOnly, packed.stdout.trim());
    const release = releaseOf((dir) => {
      writeFileSync(
        join(dir, "package.json"),
        JSON.stringify({ name: "app", version: "1.0.0", dependencies: { "root-only": `file:${tarball}` } }),
      );
      const lock = spawnSync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], {
        cwd: dir,
        encoding: "utf8",
      });
      if (lock.status !== 0) throw new Error(lock.stderr);
      writeFileSync(join(dir, MACHINE_INSTALL_MARKER), "npm ci\n");
    });
    chmodSync(rootOnly, 0o700);
    const base = tempDir("nodescale-machine-user-");
    chmodSync(base, 0o755);
    const file = join(base, "release.tar.gz");
    writeFileSync(file, release.data);
    const machine = new Machine({ machine: "m1", baseDir: base, pm2: { user: "nobody" } }, () => {});
    expect(() => machine.installRelease(file, release.sha256)).toThrow(/npm ci failed \(exit \d+\):[\s\S]*(EACCES|permission denied)/);
    expect(readdirSync(join(base, "releases"))).toEqual([]);
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

/** A release made from a folder by the system's tar (modes, links and special files as they are on disk). */
function releaseOf(build: (dir: string) => void) {
  const dir = tempDir("nodescale-hostile-release-");
  build(dir);
  const file = join(tempDir("nodescale-hostile-tar-"), "release.tar.gz");
  const tar = spawnSync("tar", ["-czf", file, "-C", dir, "."], { encoding: "utf8" });
  if (tar.status !== 0) throw new Error(tar.stderr);
  const data = readFileSync(file);
  return { data, sha256: require("node:crypto").createHash("sha256").update(data).digest("hex") as string };
}

const APP = (dir: string) => {
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "hostile", version: "1.0.0" }));
  writeFileSync(join(dir, "main.js"), "console.log('hi')\n");
};

describe("a hostile release, from whoever holds the deploy key, never reaches root (the machine agent's unpack)", () => {
  const outside = tempDir("nodescale-outside-");

  it("refuses a release whose .npmrc names a git program for its git dependency: the program never runs", () => {
    const pwned = join(outside, "pwned-by-npmrc");
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const release = releaseOf((dir) => {
      const evil = `git+ssh://git@git.invalid/evil.git#${commit}`;
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "hostile", version: "1.0.0", dependencies: { evil } }));
      writeFileSync(
        join(dir, "package-lock.json"),
        JSON.stringify({
          name: "hostile",
          version: "1.0.0",
          lockfileVersion: 3,
          requires: true,
          packages: {
            "": { name: "hostile", version: "1.0.0", dependencies: { evil } },
            "node_modules/evil": { version: "1.0.0", resolved: evil },
          },
        }),
      );
      writeFileSync(join(dir, ".npmrc"), "git=./pwn.sh\n");
      writeFileSync(join(dir, "pwn.sh"), `#!/bin/sh\nid -u > ${pwned}\nexit 1\n`, { mode: 0o755 });
      writeFileSync(join(dir, MACHINE_INSTALL_MARKER), "npm ci\n");
    });
    const { install } = unpackWith(release);
    expect(install).toThrow(`release ${release.sha256.slice(0, 12)}: .npmrc must not be in a release; refused (nothing changed)`);
    expect(existsSync(pwned)).toBe(false);
  }, 120_000);

  it("refuses a link named RELEASE: the agent's write never follows it out of the release", () => {
    const victim = join(outside, "victim.txt");
    writeFileSync(victim, "untouched\n");
    const release = releaseOf((dir) => {
      APP(dir);
      symlinkSync(victim, join(dir, "RELEASE"));
    });
    const { install } = unpackWith(release);
    expect(install).toThrow(`release ${release.sha256.slice(0, 12)}: RELEASE must not be in a release; refused (nothing changed)`);
    expect(readFileSync(victim, "utf8")).toBe("untouched\n");
  });

  it("refuses a link that leads out of the release, and keeps links that stay inside (node_modules/.bin)", () => {
    const escaping = releaseOf((dir) => {
      APP(dir);
      mkdirSync(join(dir, "lib"));
      symlinkSync("../../../../etc", join(dir, "lib", "etc"));
    });
    expect(unpackWith(escaping).install).toThrow(
      `release ${escaping.sha256.slice(0, 12)}: lib/etc is a link out of the release (to ../../../../etc); refused (nothing changed)`,
    );
    const inside = releaseOf((dir) => {
      APP(dir);
      mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
      symlinkSync("../../main.js", join(dir, "node_modules", ".bin", "main"));
    });
    const dir = unpackWith(inside).install();
    expect(readFileSync(join(dir, "node_modules", ".bin", "main"), "utf8")).toBe("console.log('hi')\n");
  });

  it("unpacks a setuid, setgid or sticky file without those bits", () => {
    const release = releaseOf((dir) => {
      APP(dir);
      writeFileSync(join(dir, "suid"), "#!/bin/sh\nid\n");
      chmodSync(join(dir, "suid"), 0o4755);
      writeFileSync(join(dir, "sgid"), "x");
      chmodSync(join(dir, "sgid"), 0o2755);
      mkdirSync(join(dir, "sticky"));
      chmodSync(join(dir, "sticky"), 0o1777);
    });
    const dir = unpackWith(release).install();
    expect(statSync(join(dir, "suid")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(dir, "sgid")).mode & 0o7000).toBe(0);
    expect(statSync(join(dir, "sticky")).mode & 0o7000).toBe(0);
  });

  it("leaves no half-unpacked folder when a release is refused or its archive is corrupt", () => {
    const refused = releaseOf((dir) => {
      APP(dir);
      symlinkSync("/etc/passwd", join(dir, "passwd"));
    });
    const first = unpackWith(refused);
    expect(first.install).toThrow(/passwd is a link out of the release/);
    expect(readdirSync(join(first.base, "releases"))).toEqual([]);
    const data = Buffer.concat([readFileSync(join(ROOT, "package.json")).subarray(0, 64)]);
    const corrupt = { data, sha256: require("node:crypto").createHash("sha256").update(data).digest("hex") as string };
    const second = unpackWith(corrupt);
    expect(second.install).toThrow(/cannot unpack/);
    expect(readdirSync(join(second.base, "releases"))).toEqual([]);
  });

  it("writes nothing outside the release for entries named ../x or /x (GNU tar refuses or strips them)", () => {
    const { reproducibleTarGz } = require("../../constructs/release/tar");
    const escaped = `nodescale-escape-${process.pid}`;
    const data: Buffer = reproducibleTarGz([
      { path: "package.json", kind: "file", executable: false, data: Buffer.from("{}") },
      { path: `../../../../../../tmp/${escaped}-dotdot`, kind: "file", executable: false, data: Buffer.from("x") },
      { path: `/tmp/${escaped}-absolute`, kind: "file", executable: false, data: Buffer.from("x") },
    ]);
    const sha256 = require("node:crypto").createHash("sha256").update(data).digest("hex") as string;
    const { base, install } = unpackWith({ data, sha256 });
    try {
      install();
    } catch (err) {
      expect(String(err)).toMatch(/cannot unpack/);
    }
    expect([existsSync(`/tmp/${escaped}-dotdot`), existsSync(`/tmp/${escaped}-absolute`)]).toEqual([false, false]);
    // Nothing half-unpacked either (a refused archive leaves no folder).
    expect(readdirSync(join(base, "releases")).filter((e) => e.endsWith(".partial"))).toEqual([]);
  });

  it("refuses a special file (a FIFO) in a release", () => {
    const release = releaseOf((dir) => {
      APP(dir);
      const made = spawnSync("mkfifo", [join(dir, "pipe")]);
      if (made.status !== 0) throw new Error("mkfifo failed");
    });
    expect(unpackWith(release).install).toThrow(
      `release ${release.sha256.slice(0, 12)}: pipe is not a regular file, folder or link; refused (nothing changed)`,
    );
  });
});
