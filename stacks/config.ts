import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError, describeIssues } from "../constructs/service/errors";
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

/** The file named by NODESCALE_CONFIG, else nodescale.config.json in `cwd`. */
export function configPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.NODESCALE_CONFIG && env.NODESCALE_CONFIG !== "" ? env.NODESCALE_CONFIG : "nodescale.config.json");
}

/** Reads and validates the configuration file; a missing default file means all defaults. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const file = configPath(env, cwd);
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

/** The app's folder: `service.source` (relative to the config file), else the bundled sample app. */
export function appDir(loaded: LoadedConfig, projectRoot: string): string {
  const source = loaded.spec.source;
  if (source === undefined) return join(projectRoot, "app");
  const dir = isAbsolute(source) ? source : resolve(isAbsolute(loaded.source) ? dirname(loaded.source) : process.cwd(), source);
  if (!existsSync(dir))
    throw new ConfigError(loaded.source, [`service.source: ${JSON.stringify(source)} does not exist (resolved to ${dir})`]);
  if (!existsSync(join(dir, "package.json"))) {
    throw new ConfigError(loaded.source, [`service.source: ${dir} has no package.json; it must be a Node.js app's folder`]);
  }
  return dir;
}
