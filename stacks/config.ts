import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError, describeIssues } from "../constructs/service/errors";
import { ENTRY_FILE } from "../constructs/service/schema";
import { NodeServiceSpec } from "../constructs/service/spec";
import { configSchema, type NodeScaleConfig } from "./config-schema";

export type { NodeScaleConfig };
export { ConfigError };

/** A validated configuration with its service spec built once for every stack. */
export interface LoadedConfig {
  readonly source: string;
  readonly config: NodeScaleConfig;
  readonly spec: NodeServiceSpec;
}

/** Validates an already-parsed configuration object; throws ConfigError listing every problem at once. */
export function parseConfig(raw: unknown, source = "nodescale.config.json"): LoadedConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error.issues, raw, configSchema));
  return { source, config: result.data, spec: NodeServiceSpec.parse(result.data.service, source) };
}

/**
 * The file named by NODESCALE_CONFIG (relative to `projectRoot`), else `projectRoot`/nodescale.config.json.
 * Anchored to the project, never to the shell's folder: run from anywhere, the app reads the same config.
 */
export function configPath(env: NodeJS.ProcessEnv, projectRoot: string): string {
  return resolve(projectRoot, env.NODESCALE_CONFIG && env.NODESCALE_CONFIG !== "" ? env.NODESCALE_CONFIG : "nodescale.config.json");
}

/** Reads and validates the project's configuration file; a missing default file means all defaults. */
export function loadConfig(env: NodeJS.ProcessEnv, projectRoot: string): LoadedConfig {
  const file = configPath(env, projectRoot);
  if (!existsSync(file)) {
    if (env.NODESCALE_CONFIG) throw new ConfigError(file, [`NODESCALE_CONFIG names ${JSON.stringify(file)}, which does not exist`]);
    return parseConfig({}, "(defaults)");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(file, [`is not valid JSON: ${(err as Error).message}`]);
  }
  return parseConfig(raw, file);
}

/** The app a deploy ships: its folder, and the config with `service.start` resolved from the app's package.json. */
export interface ResolvedApp {
  readonly dir: string;
  readonly loaded: LoadedConfig;
}

/**
 * Finds the app: `service.source` (relative to the config file), else the bundled sample app; and its entry file:
 * `service.start`, else the package.json "main", else index.js. The packer checks the rest (lock file, build
 * script, that the entry exists after the build).
 */
export function resolveApp(loaded: LoadedConfig, projectRoot: string): ResolvedApp {
  const source = loaded.spec.source;
  const problem = (field: string, message: string) => new ConfigError(loaded.source, [`service.${field}: ${message}`]);
  const dir =
    source === undefined
      ? join(projectRoot, "app")
      : isAbsolute(source)
        ? source
        : resolve(isAbsolute(loaded.source) ? dirname(loaded.source) : projectRoot, source);
  if (!existsSync(dir)) throw problem("source", `${JSON.stringify(source)} does not exist (resolved to ${dir})`);
  if (!statSync(dir).isDirectory()) throw problem("source", `${dir} is a file; name the app's folder`);
  if (!existsSync(join(dir, "package.json"))) throw problem("source", `${dir} has no package.json; it must be a Node.js app's folder`);
  if (source === undefined || loaded.config.service.start !== undefined) return { dir, loaded };
  let main: unknown;
  try {
    main = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { main?: unknown }).main;
  } catch (err) {
    throw problem("source", `${join(dir, "package.json")} is not valid JSON: ${(err as Error).message}`);
  }
  let start: string;
  if (typeof main === "string" && main !== "") start = main.replace(/^\.\//, "");
  else if (existsSync(join(dir, "index.js"))) start = "index.js";
  else {
    throw problem(
      "start",
      `${join(dir, "package.json")} has no "main" and there is no index.js; name the file node runs, such as "dist/server.js"`,
    );
  }
  if (!ENTRY_FILE.test(start)) {
    throw problem(
      "start",
      `${join(dir, "package.json")} names "main" ${JSON.stringify(main)}, which is not a .js/.cjs/.mjs file inside the app; set service.start`,
    );
  }
  const service = { ...(loaded.config.service as Record<string, unknown>), start };
  return { dir, loaded: { ...loaded, spec: NodeServiceSpec.parse(service, loaded.source) } };
}
