import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { PackError, packRelease } from "../../constructs/release/release-pack";
import { readTarGz } from "../../constructs/release/tar";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

const EXPRESS = join(ROOT, "test", "fixtures", "express-app");

/** A copy of an app folder in a fresh temp folder (as a second checkout on another machine would be). */
function copyOf(app: string): string {
  const dir = join(tempDir("nodescale-pack-copy-"), "app");
  cpSync(app, dir, { recursive: true });
  return dir;
}

/** A small app with no dependencies: package.json, a lock file and the files given. */
function app(files: Record<string, string>, pkg: Record<string, unknown> = {}): string {
  const dir = join(tempDir("nodescale-pack-app-"), "app");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "tiny", version: "1.0.0", ...pkg }));
  writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ name: "tiny", version: "1.0.0", lockfileVersion: 3, packages: {} }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** What GNU tar lists in the release, the way a machine unpacks it. */
function tarList(data: Buffer): string[] {
  const dir = tempDir("nodescale-pack-list-");
  writeFileSync(join(dir, "r.tar.gz"), data);
  const run = spawnSync("tar", ["-tzvf", join(dir, "r.tar.gz")], { encoding: "utf8" });
  expect(run.stderr).toBe("");
  return run.stdout.trim().split("\n");
}

describe("packRelease: a release is the app, its build output and its production dependencies, packed reproducibly", () => {
  const first = packRelease({ appDir: copyOf(EXPRESS), entry: "server.js" });

  it("gives the same SHA-256 for the same sources and lock file packed in two different folders", () => {
    const second = packRelease({ appDir: copyOf(EXPRESS), entry: "server.js" });
    expect(second.sha256).toBe(first.sha256);
    expect(second.data.equals(first.data)).toBe(true);
  }, 120_000);

  it("gives another SHA-256 when one source byte changes", () => {
    const changed = copyOf(EXPRESS);
    const server = join(changed, "server.js");
    writeFileSync(server, readFileSync(server, "utf8").replace('"express-fixture"', '"express-fixturE"'));
    expect(packRelease({ appDir: changed, entry: "server.js" }).sha256).not.toBe(first.sha256);
  }, 120_000);

  it("ships production dependencies only, with fixed owners and times, and no npm install cache", () => {
    expect(first.files).toContain("server.js");
    expect(first.files).toContain("node_modules/express/package.json");
    expect(first.files.some((f) => f.startsWith("node_modules/left-pad"))).toBe(false);
    expect(first.files).not.toContain("node_modules/.package-lock.json");
    const listing = tarList(first.data);
    expect(listing.length).toBe(first.files.length);
    expect(listing.every((line) => / 0\/0 .* 1970-01-01 00:00 /.test(line))).toBe(true);
  });

  it("leaves local secrets, state and node_modules of the app folder out, keeps .env.example and executable bits", () => {
    const dir = app({
      "dist/main.js": "1",
      ".env": "TOKEN=x",
      ".env.local": "TOKEN=y",
      ".env.example": "TOKEN=",
      "node_modules/junk/x.js": "x",
      "bin/run": "#!/bin/sh",
    });
    chmodSync(join(dir, "bin", "run"), 0o755);
    const release = packRelease({ appDir: dir });
    expect(release.files).toEqual([".env.example", "bin/run", "dist/main.js", "package-lock.json", "package.json"]);
    expect(tarList(release.data).find((line) => line.endsWith(" bin/run"))).toMatch(/^-rwxr-xr-x /);
  });

  it("leaves registry and machine credentials out (.npmrc, .yarnrc, .yarnrc.yml, .netrc) but lets the build read them", () => {
    const token = "//registry.example.invalid/:_authToken=npm_secret_token_4f1c";
    const dir = app(
      {
        "dist/main.js": "1",
        ".npmrc": `${token}\n`,
        ".yarnrc": "secret",
        ".yarnrc.yml": "npmAuthToken: secret",
        ".netrc": "machine example.invalid password secret",
        // The build proves it saw the app's .npmrc (a private registry's install needs it) without shipping it.
        "build.js": 'require("fs").writeFileSync("dist/saw-npmrc.txt", String(require("fs").existsSync(".npmrc")))',
      },
      { scripts: { build: "node build.js" } },
    );
    const release = packRelease({ appDir: dir });
    expect(release.files).toEqual(["build.js", "dist/main.js", "dist/saw-npmrc.txt", "package-lock.json", "package.json"]);
    expect(readTarGz(release.data).find((e) => e.path === "dist/saw-npmrc.txt")).toMatchObject({ data: Buffer.from("true") });
    expect(release.data.includes(Buffer.from("npm_secret_token"))).toBe(false);
    expect(gunzipSync(release.data).includes(Buffer.from("npm_secret_token"))).toBe(false);
  });

  it("keeps paths longer than a ustar name (PAX headers) intact for GNU tar", () => {
    const long = `dist/${"very-long-folder-name/".repeat(6)}main.js`;
    const release = packRelease({ appDir: app({ [long]: "x", "dist/main.js": "1" }) });
    expect(release.files).toContain(long);
    expect(tarList(release.data).some((line) => line.endsWith(` ${long}`))).toBe(true);
  });

  it("runs the app's build script in a copy, then ships what it produced", () => {
    const dir = app(
      { "build.js": 'require("fs").mkdirSync("out");require("fs").writeFileSync("out/server.js","built")' },
      { scripts: { build: "node build.js" } },
    );
    const release = packRelease({ appDir: dir, entry: "out/server.js" });
    expect(release.files).toContain("out/server.js");
    expect(release.entry).toBe("out/server.js");
    expect(() => readFileSync(join(dir, "out", "server.js"))).toThrow();
  });

  it("refuses an app without a lock file, naming what to do", () => {
    const dir = app({ "dist/main.js": "1" });
    rmSync(join(dir, "package-lock.json"));
    expect(() => packRelease({ appDir: dir })).toThrow(
      new PackError(
        `the app in ${dir} has no package-lock.json (or npm-shrinkwrap.json): a release installs exactly the locked dependencies; run "npm install" there and commit the lock file`,
      ),
    );
  });

  it("refuses a build script the package.json does not have, listing the ones it has", () => {
    const dir = app({ "dist/main.js": "1" }, { scripts: { start: "node dist/main.js" } });
    expect(() => packRelease({ appDir: dir, build: "compile" })).toThrow(
      new PackError(`the build script "compile" is not in ${join(dir, "package.json")} (its scripts: start)`),
    );
  });

  it("shows the output of a build that fails", () => {
    const dir = app({}, { scripts: { build: "node -e \"console.error('tsc: 3 errors in src/a.ts'); process.exit(2)\"" } });
    expect(() => packRelease({ appDir: dir })).toThrow(
      /^the build script "npm run build" of .* failed \(exit 2\); its output:\n[\s\S]*tsc: 3 errors in src\/a\.ts/,
    );
  });

  it("refuses an entry file that does not exist after the build", () => {
    const dir = app({ "server.js": "1" });
    expect(() => packRelease({ appDir: dir, entry: "dist/server.js" })).toThrow(
      new PackError(
        `the entry file "dist/server.js" does not exist in ${dir}; name the file node runs (package.json "main", or service.start)`,
      ),
    );
  });

  it("reuses a cached release for unchanged inputs, byte for byte", () => {
    const cacheDir = tempDir("nodescale-pack-cache-");
    const dir = app({ "dist/main.js": "1" });
    const packed = packRelease({ appDir: dir, cacheDir });
    const again = packRelease({ appDir: dir, cacheDir });
    expect(again).toEqual(packed);
    writeFileSync(join(dir, "dist", "main.js"), "2");
    expect(packRelease({ appDir: dir, cacheDir }).sha256).not.toBe(packed.sha256);
  });
});
