import { availableParallelism } from "node:os";

/** Settings read from the environment; the deploy templates set them from the NodeServiceSpec. */
export interface AppSettings {
  readonly port: number;
  readonly host: string;
  readonly workers: number;
  readonly shutdownGraceSeconds: number;
  readonly keepAliveTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly cpuThreads: number;
  readonly maxCpuMs: number;
  /** Whether `/cpu` (a benchmark tool, not an API) answers: off unless CPU_ENDPOINT=on. */
  readonly cpuEndpoint: boolean;
  /** Offloaded CPU jobs that may wait for a thread; beyond them `/cpu?offload=1` answers 503. */
  readonly cpuQueue: number;
  /** Prometheus metrics kept (METRICS=on, the default); off only to measure what they cost. */
  readonly metrics: boolean;
  /** Where the metrics listener answers (on HOST); none when METRICS_PORT is unset. */
  readonly metricsPort: number | undefined;
}

export class EnvError extends Error {}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new EnvError(`${name}=${JSON.stringify(raw)} is not a whole number (allowed: ${min}-${max})`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new EnvError(`${name}=${JSON.stringify(raw)} is out of range (allowed: ${min}-${max})`);
  }
  return value;
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw !== "on" && raw !== "off") throw new EnvError(`${name}=${JSON.stringify(raw)} is not allowed (allowed: on, off)`);
  return raw === "on";
}

function workersFrom(env: NodeJS.ProcessEnv, cores: number): number {
  const raw = env.WORKERS;
  if (raw === undefined || raw === "" || raw === "auto") return cores;
  return intFrom(env, "WORKERS", cores, 1, 64);
}

/** Parses the environment once; throws EnvError naming the variable on bad input. */
export function readSettings(env: NodeJS.ProcessEnv, cores: number): AppSettings {
  const keepAliveTimeoutMs = intFrom(env, "KEEP_ALIVE_TIMEOUT_MS", 65_000, 1_000, 600_000);
  const port = intFrom(env, "PORT", 3000, 0, 65_535);
  const metricsPort = env.METRICS_PORT === undefined || env.METRICS_PORT === "" ? undefined : intFrom(env, "METRICS_PORT", 9464, 1, 65_535);
  if (metricsPort !== undefined && metricsPort === port) {
    throw new EnvError(`METRICS_PORT=${JSON.stringify(env.METRICS_PORT)} is the app's PORT; metrics need a port of their own`);
  }
  return {
    port,
    host: env.HOST && env.HOST !== "" ? env.HOST : "127.0.0.1",
    workers: workersFrom(env, cores),
    shutdownGraceSeconds: intFrom(env, "SHUTDOWN_GRACE_SECONDS", 10, 1, 600),
    keepAliveTimeoutMs,
    // headersTimeout must exceed keepAliveTimeout or Node may cut a reused socket mid-request.
    headersTimeoutMs: intFrom(env, "HEADERS_TIMEOUT_MS", keepAliveTimeoutMs + 1_000, keepAliveTimeoutMs + 1, 601_000),
    cpuThreads: intFrom(env, "CPU_THREADS", 2, 1, 64),
    maxCpuMs: intFrom(env, "MAX_CPU_MS", 2_000, 1, 60_000),
    cpuEndpoint: onOff(env, "CPU_ENDPOINT", false),
    cpuQueue: intFrom(env, "CPU_QUEUE", 64, 0, 10_000),
    metrics: onOff(env, "METRICS", true),
    metricsPort,
  };
}

/** Exits with a one-line message when the environment is bad, instead of a stack trace. */
export function settingsOrExit(): AppSettings {
  try {
    return readSettings(process.env, availableParallelism());
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`nodescale-app: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
