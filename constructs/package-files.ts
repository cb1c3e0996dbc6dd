import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * NodeScale's own files, found from this module's location, never from the shell's folder or a consumer's
 * project: the same code runs from the sources (tests), from the build (dist/) and from an installed package
 * (node_modules/nodescale).
 */
function findPackageRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "templates", "nginx", "site.conf")) && existsSync(join(dir, "package.json"))) return dir;
  }
  throw new Error(`nodescale: cannot find its own templates/ folder above ${from}; the package is incomplete`);
}

/** The folder holding NodeScale's package.json, templates/ and the build (dist/). */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

/**
 * The absolute path of a compiled module that a process runs on its own (the health CLI, the local runner),
 * e.g. "health/cli.js". From the sources (tests) it is the build's copy, so those paths need `npm run build`.
 */
export function compiledModulePath(relative: string): string {
  return join(PACKAGE_ROOT, "dist", relative);
}

/** The PM2 command NodeScale depends on, wherever npm put it (hoisted or nested). */
export function pm2BinPath(): string {
  return join(dirname(require.resolve("pm2/package.json")), "bin", "pm2");
}
