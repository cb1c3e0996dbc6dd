import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The container suites run only under `npm run test:containers`, which starts the Docker daemon they use. */
export const describeContainers = process.env.NODESCALE_CONTAINERS === "1" ? describe : describe.skip;

/** The locally built stand-in for the official Node.js image (scripts/containers.sh). */
export const NODE_IMAGE = process.env.NODESCALE_NODE_IMAGE ?? "local/node:unset";

export function docker(args: readonly string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync("docker", args, { encoding: "utf8", input, maxBuffer: 64 * 1024 * 1024, timeout: 900_000 });
}

/** Runs docker; its stdout, trimmed; throws with docker's output on failure. */
export function dockerOk(args: readonly string[], input?: string): string {
  const run = docker(args, input);
  if (run.status !== 0) throw new Error(`docker ${args.join(" ")} failed (${run.status}):\n${`${run.stdout}${run.stderr}`.slice(-4000)}`);
  return run.stdout.trim();
}

/** The CA bundle this machine trusts beyond Debian's (its TLS is re-signed locally), base64 for a build argument. */
export function extraCaBase64(): string {
  const file = process.env.NODESCALE_EXTRA_CA;
  return file ? readFileSync(file).toString("base64") : "";
}

/** Seconds since `start` (a performance.now() reading), to one decimal. */
export const since = (start: number) => Math.round((performance.now() - start) / 100) / 10;
