import { RELEASE_HEADERS_FILE, releaseHeadersSource } from "../release/release-headers";
import type { NodeServiceSpec } from "../service/spec";
import { templateText, withoutCommentLines } from "../template";
import type { ProcessPlan } from "./plan";
import { pm2Apps } from "./render";

/** How the agent controls Nginx: a private prefix (the local target) or the system's service (cloud VMs). */
export type MachineNginx =
  | {
      readonly kind: "prefix";
      readonly prefix: string;
      readonly conf: string;
      readonly pidFile: string;
      readonly upstreamFile: string;
      /** Where it listens, for log lines. */
      readonly listen: string;
    }
  | { readonly kind: "systemd"; readonly pidFile: string; readonly upstreamFile: string; readonly listen: string };

export interface MachinePm2 {
  /** PM2_HOME of the machine's daemon. */
  readonly home: string;
  /** The pm2 executable. */
  readonly bin: string;
  /**
   * Run pm2 as this user (the agent itself runs as root on cloud VMs).
   * @default - the agent's own user
   */
  readonly user?: string;
  /**
   * systemd unit that supervises the daemon; a dead daemon is restarted through it, inside its cgroup.
   * @default - the agent starts the daemon itself (`pm2 ping`)
   */
  readonly systemdUnit?: string;
}

/** A file the agent keeps in place, written atomically and only when its content changes. */
export interface MachineFile {
  readonly path: string;
  readonly content: string;
  readonly mode?: number;
}

/** Everything the machine agent needs to converge one machine; serialised as plan.json. */
export interface MachinePlan {
  readonly machine: string;
  readonly service: string;
  readonly mode: ProcessPlan["mode"];
  /** Address the app processes listen on and the agent checks readiness at. */
  readonly host: string;
  readonly ports: readonly number[];
  readonly readyPath: string;
  readonly readyTimeoutSeconds: number;
  readonly drainSeconds: number;
  readonly killTimeoutSeconds: number;
  readonly keepReleases: number;
  /** Clients reach this machine's Nginx directly (no load balancer to drain it first). */
  readonly clientFacing: boolean;
  readonly baseDir: string;
  readonly logDir: string;
  readonly pm2: MachinePm2;
  readonly nginx: MachineNginx;
  readonly apps: readonly Record<string, unknown>[];
  readonly files: readonly MachineFile[];
  /** NodeScale's release-headers preload, written by the agent before any process of a release starts. */
  readonly preload: MachineFile;
  /** Names of the service's secrets (spec.secrets); their values are in `secretsFile`, never in the plan. */
  readonly secretNames: readonly string[];
  /** The 0600 JSON file (name -> value) that whoever fetches the secrets writes before the agent runs. */
  readonly secretsFile: string;
}

export interface MachinePlanOptions {
  /** Name in the agent's log lines, and (with `reportMachine`) the `machine` the processes report. */
  readonly machine: string;
  /**
   * Make the processes report `machine` (several simulated machines share one host name).
   * @default false: they report their host name
   */
  readonly reportMachine?: boolean;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** Holds releases/, the `current` link, the ecosystem file and the canary's. */
  readonly baseDir: string;
  readonly logDir: string;
  readonly pm2: MachinePm2;
  readonly nginx: MachineNginx;
  /** Nginx files the agent keeps in place (site, main config). */
  readonly files: readonly MachineFile[];
  /**
   * Releases kept on the machine for a quick roll back, the current one included.
   * @default 3
   */
  readonly keepReleases?: number;
  /**
   * Clients reach this machine's Nginx directly; false behind a load balancer, which drains it before a change.
   * @default true
   */
  readonly clientFacing?: boolean;
  /**
   * Where the processes' metrics sockets go (see AppOptions.metricsSocketDir).
   * @default `${baseDir}/metrics`
   */
  readonly metricsSocketDir?: string;
  /**
   * Where the secrets' values are put for the agent (a 0600 file only its owner reads).
   * @default `${baseDir}/secrets.json`
   */
  readonly secretsFile?: string;
}

/** The machine agent's plan for one machine, every value derived from the spec. Pure. */
export function renderMachinePlan(spec: NodeServiceSpec, plan: ProcessPlan, options: MachinePlanOptions): MachinePlan {
  const host = options.host ?? "127.0.0.1";
  return {
    machine: options.machine,
    service: spec.name,
    mode: plan.mode,
    host,
    ports: plan.ports,
    readyPath: spec.readyPath,
    readyTimeoutSeconds: spec.readyTimeoutSeconds,
    drainSeconds: spec.deregistrationDelaySeconds,
    killTimeoutSeconds: spec.killTimeoutMs / 1000,
    keepReleases: options.keepReleases ?? 3,
    clientFacing: options.clientFacing ?? true,
    baseDir: options.baseDir,
    logDir: options.logDir,
    pm2: options.pm2,
    nginx: options.nginx,
    apps: pm2Apps(spec, plan, {
      appDir: `${options.baseDir}/current`,
      preload: `${options.baseDir}/${RELEASE_HEADERS_FILE}`,
      logDir: options.logDir,
      host,
      machine: options.reportMachine ? options.machine : undefined,
      metricsSocketDir: options.metricsSocketDir ?? `${options.baseDir}/metrics`,
    }),
    files: options.files,
    preload: { path: `${options.baseDir}/${RELEASE_HEADERS_FILE}`, content: releaseHeadersSource() },
    secretNames: Object.keys(spec.secrets),
    secretsFile: options.secretsFile ?? `${options.baseDir}/secrets.json`,
  };
}

/**
 * The machine agent as cloud VMs receive it in their user data: the same code with its comment lines left out (EC2
 * takes 16 KiB of gzipped user data, and the comments are a tenth of it). The local target runs the file itself.
 */
export function machineAgentSource(): string {
  return withoutCommentLines(templateText("vm/machine-agent.js"));
}
