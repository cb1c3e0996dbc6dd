import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AppBundle } from "../../constructs/release/bundle";
import { packRelease } from "../../constructs/release/release-pack";

/** A tiny built app with fixed content, so snapshots do not change with every edit of app/. */
export function fixtureBundle(): AppBundle {
  const dir = mkdtempSync(join(tmpdir(), "nodescale-fixture-app-"));
  mkdirSync(join(dir, "dist"));
  writeFileSync(join(dir, "package.json"), '{"name":"fixture","version":"1.0.0"}\n');
  writeFileSync(join(dir, "package-lock.json"), '{"name":"fixture","version":"1.0.0","lockfileVersion":3,"packages":{}}\n');
  writeFileSync(join(dir, "dist", "main.js"), 'require("node:http").createServer((q, s) => s.end("ok")).listen(process.env.PORT);\n');
  try {
    return packRelease({ appDir: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The sample app as a release takes it (package.json, lock file, built dist/), copied to `dest`. */
export function copySampleApp(dest: string): string {
  const app = join(__dirname, "..", "..", "app");
  for (const file of ["package.json", "package-lock.json"]) cpSync(join(app, file), join(dest, file));
  cpSync(join(app, "dist"), join(dest, "dist"), { recursive: true });
  return dest;
}

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temp folder, removed when the test file's tests are done. */
export function tempDir(prefix = "nodescale-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
