import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULT_START } from "../service/spec";
import type { AppBundle } from "./bundle";
import { reproducibleTarGz, type TarEntry } from "./tar";

/** The app could not be packed (no lock file, a failed build, a missing entry): says what, and shows npm's output. */
export class PackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PackError";
  }
}

export interface PackReleaseOptions {
  /** The app's folder: package.json, a lock file (package-lock.json or npm-shrinkwrap.json) and its sources. */
  readonly appDir: string;
  /**
   * The entry file that `node` runs, relative to the app folder; must exist after the build.
   * @default "dist/main.js"
   */
  readonly entry?: string;
  /**
   * The npm script run (with dev dependencies installed) before the production install; `false`: none.
   * @default - "build" when the app's package.json has that script, else none
   */
  readonly build?: string | false;
  /**
   * A folder keeping packed releases by a hash of their inputs, so an unchanged app is not installed again on
   * every synth. The result is the same with or without it.
   * @default - no cache: every call packs from scratch
   */
  readonly cacheDir?: string;
}

/** Folders never shipped: rebuilt (node_modules), history, local state and build tooling output. */
const SKIP_ANYWHERE = new Set(["node_modules", ".git"]);
const SKIP_AT_TOP = new Set([".nodescale", "cdktf.out", ".terraform", "coverage"]);
/** Local secrets stay on the developer's machine: `.env`, `.env.local`, ... (templates such as `.env.example` ship). */
const SECRET_FILE = /^\.env(\.(?!example$|sample$|template$)[^/]*)?$/;
const STATE_FILE = /\.tfstate(\..*)?$/;
/**
 * Package managers' and tools' credentials (registry tokens, machine passwords): present while packing, so npm ci
 * and the build can reach a private registry, never shipped (a release is readable on every machine and in the
 * bucket or user data).
 */
const CREDENTIAL_FILE = /^(\.npmrc|\.yarnrc|\.yarnrc\.yml|\.netrc)$/;
/** npm's own cache of the install, which differs between npm versions; npm rebuilds it when missing. */
const NPM_HIDDEN_LOCK = "node_modules/.package-lock.json";
/** Bumped when the packing rules change, so a cached release from older rules is not reused. */
const PACK_FORMAT = "nodescale-release-3";

/** Files and links under `root/rel`, in name order, descending only where `ships(path, name)` holds. */
function collect(root: string, rel: string, ships: (path: string, name: string) => boolean, out: string[]): string[] {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = rel === "" ? name : `${rel}/${name}`;
    if (!ships(path, name)) continue;
    const stat = lstatSync(join(root, path));
    if (stat.isDirectory()) collect(root, path, ships, out);
    else if (stat.isFile() || stat.isSymbolicLink()) out.push(path);
  }
  return out;
}

const isSource = (path: string, name: string) =>
  !SKIP_ANYWHERE.has(name) &&
  !(path === name && SKIP_AT_TOP.has(name)) &&
  !SECRET_FILE.test(name) &&
  !STATE_FILE.test(name) &&
  !CREDENTIAL_FILE.test(name);

/** Every file and link under `root` that ships, sorted; node_modules (as npm installed it) only when `withModules`. */
function listFiles(root: string, withModules: boolean): string[] {
  const out = collect(root, "", isSource, []);
  if (withModules && existsSync(join(root, "node_modules"))) collect(root, "node_modules", (path) => path !== NPM_HIDDEN_LOCK, out);
  return out.sort();
}

function entryOf(root: string, path: string): TarEntry {
  const full = join(root, path);
  const stat = lstatSync(full);
  if (stat.isSymbolicLink()) return { path, kind: "symlink", target: readlinkSync(full) };
  return { path, kind: "file", executable: (stat.mode & 0o111) !== 0, data: readFileSync(full) };
}

interface PackageJson {
  readonly scripts?: Record<string, string>;
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (err) {
    throw new PackError(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The name of the lock file `npm ci` would install from in `appDir`, if it has one. */
export function findLockFile(appDir: string): string | undefined {
  return ["npm-shrinkwrap.json", "package-lock.json"].find((name) => existsSync(join(appDir, name)));
}

/** Lock files of the package managers a release cannot be built with yet (it runs `npm ci`). */
const UNSUPPORTED_LOCK_FILES: readonly (readonly [file: string, manager: string])[] = [
  ["pnpm-lock.yaml", "pnpm"],
  ["yarn.lock", "Yarn"],
];

/**
 * Why `appDir` cannot be released, when its only lock file is pnpm's or Yarn's (no npm lock file beside it):
 * NodeScale installs a release with `npm ci`, and telling a pnpm user to "run npm install" would be wrong advice.
 */
export function unsupportedPackageManager(appDir: string): string | undefined {
  if (findLockFile(appDir) !== undefined) return undefined;
  const found = UNSUPPORTED_LOCK_FILES.find(([file]) => existsSync(join(appDir, file)));
  if (found === undefined) return undefined;
  const [file, manager] = found;
  return `${appDir} is locked by ${manager} (${file}) and has no package-lock.json: NodeScale builds a release with "npm ci" from package-lock.json and does not support pnpm or Yarn yet. Nothing was written. To deploy this app now, create a package-lock.json ("npm install --package-lock-only") and commit it beside ${file}.`;
}

/**
 * The lock file npm ci installs from, in a folder that must be a Node.js app (a package.json): the release is
 * reproducible only with one. Throws PackError naming what is missing.
 */
function appLockFile(appDir: string): string {
  if (!existsSync(join(appDir, "package.json"))) throw new PackError(`${appDir} has no package.json; it must be a Node.js app's folder`);
  const found = findLockFile(appDir);
  if (found !== undefined) return found;
  const unsupported = unsupportedPackageManager(appDir);
  if (unsupported !== undefined) throw new PackError(unsupported.replace(" Nothing was written.", ""));
  throw new PackError(
    `the app in ${appDir} has no package-lock.json (or npm-shrinkwrap.json): a release installs exactly the locked dependencies; run "npm install" there and commit the lock file`,
  );
}

function npm(args: string[], cwd: string, what: string): void {
  const run = spawnSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NODE_ENV: undefined, npm_config_update_notifier: "false" },
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw new PackError(`${what}: cannot run npm (${run.error.message})`);
  if (run.status !== 0) {
    const output = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim().split("\n").slice(-40).join("\n");
    throw new PackError(`${what} failed (exit ${run.status}); its output:\n${output}`);
  }
}

/**
 * The npm script a release runs before packaging: `build` as given, or "build" when the app's package.json has
 * that script; false for none. Throws PackError when the named script is missing.
 */
export function resolveBuildScript(appDir: string, build: string | false | undefined): string | false {
  const pkg = readJson<PackageJson>(join(appDir, "package.json"), "package.json");
  const scripts = pkg.scripts ?? {};
  const resolved = build === undefined ? (scripts.build !== undefined ? "build" : false) : build;
  if (resolved !== false && scripts[resolved] === undefined) {
    const known = Object.keys(scripts);
    throw new PackError(
      `the build script ${JSON.stringify(resolved)} is not in ${join(appDir, "package.json")} (its scripts: ${known.length ? known.join(", ") : "none"})`,
    );
  }
  return resolved;
}

function copyFiles(from: string, paths: readonly string[], to: string): void {
  for (const path of paths) {
    mkdirSync(dirname(join(to, path)), { recursive: true });
    cpSync(join(from, path), join(to, path), { verbatimSymlinks: true });
  }
}

/**
 * Copies the app's sources as a release takes them (no node_modules, VCS folders, local state, `.env` files or
 * Terraform state) into `dest`: the build context of an image built from the same sources as the release.
 */
export function stageSources(appDir: string, dest: string): readonly string[] {
  appLockFile(appDir);
  const sources = listFiles(appDir, false);
  copyFiles(appDir, sources, dest);
  return sources;
}

/**
 * Packs an app as a release: its sources, the output of its build script, and its production dependencies
 * (`npm ci --omit=dev` in a staging copy; the app's own folder is never written to), as a reproducible tarball:
 * the same sources and lock file give the same SHA-256 on any machine. Throws PackError naming what is wrong.
 */
export function packRelease(options: PackReleaseOptions): AppBundle {
  const appDir = options.appDir;
  const entry = options.entry ?? DEFAULT_START;
  const lock = appLockFile(appDir);
  const build = resolveBuildScript(appDir, options.build);

  const sources = listFiles(appDir, false);
  const key = createHash("sha256").update(`${PACK_FORMAT}\0${entry}\0${build}\0${process.versions.node.split(".")[0]}\0`);
  for (const path of sources) {
    const e = entryOf(appDir, path);
    key.update(`${path}\0${e.kind === "file" ? `${e.executable}\0${createHash("sha256").update(e.data).digest("hex")}` : e.target}\0`);
  }
  const cacheKey = key.digest("hex");
  const cached = options.cacheDir ? join(options.cacheDir, `${cacheKey}.tar.gz`) : undefined;
  if (cached && existsSync(cached) && existsSync(`${cached}.json`)) {
    const data = readFileSync(cached);
    const meta = readJson<{ files: string[] }>(`${cached}.json`, "release cache entry");
    return { data, sha256: createHash("sha256").update(data).digest("hex"), files: meta.files, entry };
  }

  const stage = mkdtempSync(join(tmpdir(), "nodescale-pack-"));
  try {
    copyFiles(appDir, sources, stage);
    // The app's registry credentials for npm ci and the build only; the release's listing leaves them out.
    copyFiles(
      appDir,
      readdirSync(appDir).filter((name) => CREDENTIAL_FILE.test(name) && lstatSync(join(appDir, name)).isFile()),
      stage,
    );
    const locked = readJson<{ packages?: Record<string, { dev?: boolean }> }>(join(stage, lock), lock);
    const deps = Object.entries(locked.packages ?? {}).filter(([name]) => name.startsWith("node_modules/"));
    if (build !== false) {
      if (deps.length > 0) npm(["ci"], stage, `npm ci (for the build) in a copy of ${appDir}`);
      npm(["run", build], stage, `the build script "npm run ${build}" of ${appDir}`);
      rmSync(join(stage, "node_modules"), { recursive: true, force: true });
    }
    if (deps.some(([, meta]) => meta.dev !== true)) npm(["ci", "--omit=dev"], stage, `npm ci --omit=dev in a copy of ${appDir}`);
    if (!existsSync(join(stage, entry))) {
      throw new PackError(
        `the entry file ${JSON.stringify(entry)} does not exist in ${appDir}${build !== false ? ` after "npm run ${build}"` : ""}; name the file node runs (package.json "main", or service.start)`,
      );
    }
    // Everything the build produced ships too (the build may write anywhere in its copy), except what never does.
    const files = listFiles(stage, true);
    const data = reproducibleTarGz(files.map((path) => entryOf(stage, path)));
    const bundle = { data, sha256: createHash("sha256").update(data).digest("hex"), files, entry };
    if (cached && options.cacheDir) {
      mkdirSync(options.cacheDir, { recursive: true });
      // Temporary names of this process only: two deploys from one checkout may pack the same release at once.
      const tmp = `${process.pid}.tmp`;
      writeFileSync(`${cached}.json.${tmp}`, JSON.stringify({ files }));
      writeFileSync(`${cached}.${tmp}`, data);
      renameSync(`${cached}.json.${tmp}`, `${cached}.json`);
      renameSync(`${cached}.${tmp}`, cached);
    }
    return bundle;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
