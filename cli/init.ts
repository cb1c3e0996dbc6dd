import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { PACKAGE_ROOT } from "../constructs/package-files";
import { findLockFile, unsupportedPackageManager } from "../constructs/release/release-pack";
import { ConfigError } from "../constructs/service/errors";
import { parseConfig, resolveApp } from "../stacks/config";

/** `nodescale init` refused: says what is wrong and what to do; printed without a stack trace. */
export class InitError extends Error {}

export interface InitOptions {
  /** The service's folder (holds its package.json). */
  readonly dir: string;
  /**
   * Overwrite an existing nodescale.config.json.
   * @default false
   */
  readonly force?: boolean;
  /**
   * The service's name.
   * @default - the package.json "name", made a DNS label (scope dropped, lower case)
   */
  readonly name?: string;
  /**
   * Where NodeScale is: the `$schema` path and the next commands point at it.
   * @default PACKAGE_ROOT
   */
  readonly nodescaleDir?: string;
}

export interface InitResult {
  readonly file: string;
  readonly config: Record<string, unknown>;
  /** What to run next, one command per line, with a comment each. */
  readonly next: readonly string[];
  /** Things to fix before the first deploy (e.g. no lock file yet). */
  readonly warnings: readonly string[];
}

/** A package name as a service name: "@acme/Orders_API" -> "orders-api". */
export function serviceNameFrom(packageName: string): string {
  const label = packageName
    .replace(/^@[^/]+\//, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return label === "" ? "service" : label;
}

const shellQuote = (s: string) => (/^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * Writes <dir>/nodescale.config.json for an existing Node.js service: validated by the same schema and app
 * checks a deploy runs, so what init writes deploys (or init says why not, writing nothing).
 */
export function initConfig(options: InitOptions): InitResult {
  const dir = resolve(options.dir);
  const nodescaleDir = options.nodescaleDir ?? PACKAGE_ROOT;
  const file = join(dir, "nodescale.config.json");
  const pkgFile = join(dir, "package.json");
  if (!existsSync(pkgFile)) {
    throw new InitError(
      `${dir} has no package.json: run "nodescale init" in your Node.js service's folder (or name it: nodescale init <folder>)`,
    );
  }
  if (existsSync(file) && !options.force) {
    throw new InitError(`${file} exists; nothing was written. Run "nodescale init --force" to replace it.`);
  }
  const unsupported = unsupportedPackageManager(dir);
  if (unsupported !== undefined) throw new InitError(unsupported);
  let pkg: { name?: unknown; scripts?: Record<string, unknown> };
  try {
    pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
  } catch (err) {
    throw new InitError(`${pkgFile} is not valid JSON: ${(err as Error).message}`);
  }
  const name = options.name ?? serviceNameFrom(typeof pkg.name === "string" ? pkg.name : basename(dir));
  const schemaFile = join(nodescaleDir, "nodescale.schema.json");
  const draft = { $schema: relative(dir, schemaFile) || schemaFile, service: { name, source: "." } };

  let start: string;
  try {
    const { loaded } = resolveApp(parseConfig(draft, file), nodescaleDir);
    start = loaded.spec.start;
  } catch (err) {
    if (err instanceof ConfigError) throw new InitError(err.problems.join("\n"));
    throw err;
  }
  // The resolved entry is written out, so the file says what runs (and a later package.json change cannot move it).
  const config = { ...draft, service: { ...draft.service, start } };
  const warnings: string[] = [];
  if (findLockFile(dir) === undefined) {
    warnings.push('no package-lock.json: run "npm install" once; a release is built with "npm ci" from the lock file');
  }
  if (!existsSync(join(dir, start)) && typeof pkg.scripts?.build !== "string") {
    warnings.push(`${start} does not exist and there is no "build" script to make it: set service.start to your entry file`);
  }
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);

  const env = `NODESCALE_CONFIG=${shellQuote(file)}`;
  const prefix = `npm --prefix ${shellQuote(nodescaleDir)}`;
  const checkout = existsSync(join(nodescaleDir, "scripts", "local-up.sh"));
  const next = checkout
    ? [
        `${env} ${prefix} run local          # deploy on this machine (Nginx + PM2 on 127.0.0.1), ends with the health check`,
        `${env} ${prefix} run local:reload   # roll the processes under load`,
        `${env} ${prefix} run local:down     # stop everything`,
        `(cd ${shellQuote(nodescaleDir)} && ${env} npx cdktf deploy vm-pm2)   # the same release on EC2 (README: the other targets)`,
      ]
    : [
        "# NodeScale is installed as a library here: compose its constructs in your cdktf app (README: NodeScale as a library),",
        "# or deploy with the golden path from a NodeScale checkout: NODESCALE_CONFIG=<this file> npm run local",
      ];
  return { file, config, next, warnings };
}
