import { createHash } from "node:crypto";
import type { AppBundle } from "./bundle";
import { readTarGz, reproducibleTarGz } from "./tar";

/**
 * The file that tells the machine agent to install the release's dependencies itself: `npm ci --omit=dev
 * --ignore-scripts` from the release's lock file, before the release can start.
 */
export const MACHINE_INSTALL_MARKER = ".nodescale-npm-ci";

/**
 * The same release without its node_modules, for a channel too small to carry them (a Droplet's 64 KiB user data):
 * the machine installs exactly the locked versions (npm checks each package's integrity hash from the lock file),
 * with install scripts off. Its SHA-256 differs from the full bundle's: it is another release id. Pure.
 */
export function withoutDependencies(bundle: AppBundle): AppBundle {
  const entries = readTarGz(bundle.data).filter((e) => e.path !== "node_modules" && !e.path.startsWith("node_modules/"));
  const marker = Buffer.from(
    "Written by NodeScale: this release's dependencies are installed on the machine (npm ci --omit=dev --ignore-scripts).\n",
  );
  const all = [...entries, { path: MACHINE_INSTALL_MARKER, kind: "file" as const, executable: false, data: marker }];
  const data = reproducibleTarGz(all);
  return {
    data,
    sha256: createHash("sha256").update(data).digest("hex"),
    files: all.map((e) => e.path).sort(),
    entry: bundle.entry,
  };
}
