import { z } from "zod";
import { DEFAULT_NODE_MAJOR, SUPPORTED_NODE_MAJORS } from "./node-releases";
import { DNS_LABEL, wholeNumber } from "./rules";
import { parseSecretRef, SECRET_REF_RULE } from "./secrets";

const URL_PATH = /^\/[A-Za-z0-9._~\-/]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A file inside the app folder that `node` runs: relative, no "..", no shell metacharacters. */
export const ENTRY_FILE = /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._\-/@]+\.(c|m)?js$/;
const NPM_SCRIPT = /^[A-Za-z0-9][A-Za-z0-9:._-]*$/;
const BUILD_RULE = 'must be the name of an npm script in the app\'s package.json, such as "build", or false for none';

/** Variables the deploy sets from the spec; a user value would silently fight the derived one. */
export const RESERVED_ENV = [
  "PORT",
  "HOST",
  "WORKERS",
  "SHUTDOWN_GRACE_SECONDS",
  "KEEP_ALIVE_TIMEOUT_MS",
  "HEADERS_TIMEOUT_MS",
  "NODESCALE_RELEASE",
  "NODESCALE_MACHINE",
  "NODESCALE_APP_HASH",
  "METRICS_PORT",
  "METRICS_SOCKET_DIR",
] as const;

/**
 * Names that change how the machine's programs load or run rather than what the app reads: the dynamic loader's and
 * glibc's (the variables glibc itself drops for setuid programs: LD_*, GCONV_PATH, GLIBC_TUNABLES, ...), the shell's
 * (BASH_ENV, ENV, IFS, exported functions), the search paths (PATH, NODE_PATH, HOME), Node.js's flags (NODE_OPTIONS),
 * PM2's and npm's configuration. The values reach root's `runuser` and the PM2 CLI on VMs, where one of these runs
 * code as root (a secret named LD_PRELOAD loaded a library as uid 0), and the same names are refused on every target.
 */
export const RESERVED_ENV_PREFIXES = ["LD_", "PM2_", "npm_config_", "NPM_CONFIG_", "BASH_FUNC_"] as const;
export const RESERVED_PROCESS_ENV = [
  "PATH",
  "HOME",
  "NODE_OPTIONS",
  "NODE_PATH",
  "BASH_ENV",
  "ENV",
  "IFS",
  "SHELLOPTS",
  "BASHOPTS",
  "PS4",
  "CDPATH",
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_TRACE",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TMPDIR",
  "TZDIR",
] as const;
const PROCESS_CONTROL_RULE = `changes how the machine's programs load or run, not what the app reads (refused: ${RESERVED_ENV_PREFIXES.map((p) => `${p}*`).join(", ")}, ${RESERVED_PROCESS_ENV.join(", ")}); use another name`;

/** Whether a variable name is one of RESERVED_ENV_PREFIXES / RESERVED_PROCESS_ENV. */
export function controlsProcesses(name: string): boolean {
  return (RESERVED_PROCESS_ENV as readonly string[]).includes(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p));
}

const NODE_VERSION_RULE = `must be a supported Node.js LTS major: ${SUPPORTED_NODE_MAJORS.join(", ")}`;

/** A fully qualified DNS name (what a certificate is issued for). */
export const DOMAIN_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** The least memory a Node process is given: room for the runtime (about 45 MiB) and an app, under PM2's 90% restart mark. */
export const MIN_MEMORY_MIB = 128;

/** service.metricsPort's default (the OpenTelemetry Prometheus exporter's port). */
export const DEFAULT_METRICS_PORT = 9464;

const WORKERS_RULE = 'must be "auto" (one per CPU core) or a whole number 1-64';

const path = (fallback: string) =>
  z
    .string({ error: 'must be a URL path such as "/health"' })
    .regex(URL_PATH, { error: 'must be a URL path such as "/health"' })
    .default(fallback);

/** The provider-neutral description of one Node.js service; every topology renders from it. */
export const serviceSchema = z
  .strictObject({
    name: z
      .string({ error: "must be a DNS-1123 label: lower-case letters, digits and '-', starting with a letter, at most 63 characters" })
      .regex(DNS_LABEL, {
        error: "must be a DNS-1123 label: lower-case letters, digits and '-', starting with a letter, at most 63 characters",
      })
      .default("hello-node"),
    port: wholeNumber(1024, 65535, "the port the Node process listens on; ports below 1024 need root").default(3000),
    metricsPort: wholeNumber(
      1024,
      65535,
      "the port of the metrics listener: loopback on a VM, the pod's own address on Kubernetes; never routed from outside",
    ).default(DEFAULT_METRICS_PORT),
    workers: z
      .union(
        [z.literal("auto"), z.number().int({ error: WORKERS_RULE }).min(1, { error: WORKERS_RULE }).max(64, { error: WORKERS_RULE })],
        {
          error: WORKERS_RULE,
        },
      )
      .default("auto"),
    shutdownGraceSeconds: wholeNumber(1, 300, "how long in-flight requests may take to finish on shutdown").default(10),
    healthPath: path("/health"),
    readyPath: path("/ready"),
    // Node.js alone holds about 45 MiB before the app does anything, and PM2 restarts a process at 90% of this.
    memoryMiB: wholeNumber(MIN_MEMORY_MIB, 65536, "memory per Node process; Node.js alone takes about 45 MiB").default(512),
    cpuMillicores: wholeNumber(50, 64000, "CPU requested per Node process on Kubernetes").default(250),
    maxBodySizeMiB: wholeNumber(1, 1024, "largest request body the proxy accepts").default(10),
    domain: z
      .string({ error: "must be a DNS name such as api.example.com" })
      .regex(DOMAIN_NAME, { error: "must be a DNS name such as api.example.com" })
      .optional(),
    clientLimits: z
      .strictObject({
        requestsPerSecond: wholeNumber(1, 100_000, "sustained requests per second one client address may send").default(100),
        burst: wholeNumber(0, 100_000, "requests above that rate one client may send at once before it gets 429").default(200),
        connections: wholeNumber(1, 100_000, "connections one client address may hold open at once").default(100),
      })
      .prefault({}),
    source: z
      .string({ error: "must be the path of the app's folder (absolute, or relative to the config file)" })
      .min(1, { error: "must be the path of the app's folder (absolute, or relative to the config file)" })
      .optional(),
    start: z
      .string({ error: 'must be the entry file inside the app folder, such as "dist/server.js"' })
      .regex(ENTRY_FILE, { error: 'must be a relative .js/.cjs/.mjs path inside the app folder, such as "dist/server.js" (no "..")' })
      .optional(),
    build: z.union([z.string().regex(NPM_SCRIPT, { error: BUILD_RULE }), z.literal(false)], { error: BUILD_RULE }).optional(),
    signalsReady: z.boolean({ error: "must be true or false" }).optional(),
    nodeVersion: z
      .union(
        SUPPORTED_NODE_MAJORS.map((major) => z.literal(major)),
        { error: NODE_VERSION_RULE },
      )
      .default(DEFAULT_NODE_MAJOR),
    env: z
      .record(
        z.string().regex(ENV_NAME, { error: "environment variable names are letters, digits and '_', not starting with a digit" }),
        z.string({ error: "environment values must be strings" }),
      )
      .default({}),
    secrets: z
      .record(
        z.string().regex(ENV_NAME, { error: "environment variable names are letters, digits and '_', not starting with a digit" }),
        z.string({ error: SECRET_REF_RULE }).refine((v) => parseSecretRef(v) !== undefined, { error: SECRET_REF_RULE }),
      )
      .default({}),
  })
  .superRefine((service, ctx) => {
    if (service.metricsPort === service.port) {
      ctx.addIssue({
        code: "custom",
        path: ["metricsPort"],
        input: service.metricsPort,
        message: `must differ from service.port (${service.port}): metrics have a listener of their own, never the app's`,
      });
    }
    if (service.healthPath === service.readyPath) {
      ctx.addIssue({
        code: "custom",
        path: ["readyPath"],
        input: service.readyPath,
        message: `must differ from service.healthPath (liveness and readiness answer different questions)`,
      });
    }
    for (const key of Object.keys(service.secrets)) {
      const clash = (RESERVED_ENV as readonly string[]).includes(key)
        ? `is set by NodeScale from the spec (reserved: ${RESERVED_ENV.join(", ")})`
        : controlsProcesses(key)
          ? `the name ${key} ${PROCESS_CONTROL_RULE}`
          : key in service.env
            ? "is also in service.env: one variable, one source"
            : undefined;
      if (clash) ctx.addIssue({ code: "custom", path: ["secrets", key], input: key, message: clash });
    }
    for (const key of Object.keys(service.env)) {
      if (controlsProcesses(key)) {
        ctx.addIssue({ code: "custom", path: ["env", key], input: key, message: `the name ${key} ${PROCESS_CONTROL_RULE}` });
      }
      if ((RESERVED_ENV as readonly string[]).includes(key)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", key],
          input: key,
          message: `is set by NodeScale from the spec (reserved: ${RESERVED_ENV.join(", ")}); change the matching service field instead`,
        });
      }
    }
  });

export type ServiceConfig = z.infer<typeof serviceSchema>;
export type ServiceInput = z.input<typeof serviceSchema>;
