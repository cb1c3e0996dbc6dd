import { ConfigError, describeIssues } from "./errors";
import { NODE_RELEASES, type NodeMajor, type NodeRelease } from "./node-releases";
import { type ServiceConfig, type ServiceInput, serviceSchema } from "./schema";
import { parseSecretRef, type SecretRef } from "./secrets";

/** Idle timeout of Nginx's upstream keep-alive and of the cloud load balancers we put in front (AWS ALB/NLB default). */
export const UPSTREAM_IDLE_TIMEOUT_SECONDS = 60;
/** Node must keep idle sockets open longer than any proxy in front, or the proxy reuses a socket Node just closed. */
const KEEP_ALIVE_MARGIN_SECONDS = 5;
/** Room for the PM2 / cluster primary to notice a worker's exit after the app's own grace ran out. */
const SUPERVISOR_MARGIN_SECONDS = 3;
/** Room for the kubelet between the app's hard deadline and SIGKILL. */
const KUBELET_MARGIN_SECONDS = 5;
/** A load balancer keeps a draining machine a little longer than PM2 may take to stop a process. */
const DRAIN_MARGIN_SECONDS = 2;

/** Where the sample app's entry file lives; an app of your own names its own (package.json "main" or `start`). */
export const DEFAULT_START = "dist/main.js";

/** Process-level values a deploy adds to the environment. */
export interface AppEnvOptions {
  /**
   * Release the process reports (NODESCALE_RELEASE).
   * @default - none: the app reads RELEASE beside its code
   */
  readonly release?: string;
  /**
   * Machine name the process reports (NODESCALE_MACHINE).
   * @default - none: the app reports its host name
   */
  readonly machine?: string;
}

/** The provider-neutral service spec: validated once, then the single source of every derived value. */
export class NodeServiceSpec {
  /** Validates raw props (from the config file or code); throws ConfigError naming each bad field. */
  static parse(input: ServiceInput | undefined, source = "service"): NodeServiceSpec {
    const result = serviceSchema.safeParse(input ?? {});
    if (!result.success) throw new ConfigError(source, describeIssues(result.error.issues, input ?? {}, serviceSchema, "service"));
    return new NodeServiceSpec(result.data);
  }

  readonly name: string;
  readonly port: number;
  /** Where each machine's (or pod's) metrics answer: Prometheus text for every process of the group. */
  readonly metricsPort: number;
  readonly workers: number | "auto";
  readonly shutdownGraceSeconds: number;
  readonly healthPath: string;
  readonly readyPath: string;
  readonly memoryMiB: number;
  readonly cpuMillicores: number;
  readonly maxBodySizeMiB: number;
  /**
   * Per-client limits the proxy in front of the app enforces (429 with `Retry-After` beyond them), where a target
   * turns them on: cloud VMs by default, the local stack when asked.
   */
  readonly clientLimits: Readonly<ServiceConfig["clientLimits"]>;
  /**
   * The DNS name clients use: the targets serve HTTPS for it (a certificate that renews itself), redirect HTTP and
   * send HSTS.
   * @default - none: HTTP on the target's own address
   */
  readonly domain: string | undefined;
  /**
   * Environment variables whose values are secrets, by reference (SSM, Secrets Manager, the deploying shell): the
   * spec, the config and everything synthesized from them hold the references only.
   */
  readonly secrets: Readonly<Record<string, SecretRef>>;
  readonly env: Readonly<Record<string, string>>;
  /** The app's folder as written in the config (undefined: the bundled sample app). */
  readonly source: string | undefined;
  /**
   * The entry file inside the app folder that `node` runs (PM2's script, the container's command).
   * @default "dist/main.js" - the sample app's layout; the config loader resolves it from the app's package.json "main"
   */
  readonly start: string;
  /**
   * The npm script run before packaging; `false`: none.
   * @default - the app's "build" script when its package.json has one, else none
   */
  readonly build: string | false | undefined;
  /**
   * Whether the app calls `process.send("ready")` once it listens: PM2 then waits for that message, otherwise for
   * the port. The sample app signals; an app of your own is assumed not to.
   * @default - true for the bundled sample app (no `source`), false for your own
   */
  readonly signalsReady: boolean;
  /**
   * The Node.js LTS major that VMs install and the image runs.
   * @default 22
   */
  readonly nodeVersion: NodeMajor;

  private constructor(config: ServiceConfig) {
    this.name = config.name;
    this.port = config.port;
    this.metricsPort = config.metricsPort;
    this.workers = config.workers;
    this.shutdownGraceSeconds = config.shutdownGraceSeconds;
    this.healthPath = config.healthPath;
    this.readyPath = config.readyPath;
    this.memoryMiB = config.memoryMiB;
    this.cpuMillicores = config.cpuMillicores;
    this.maxBodySizeMiB = config.maxBodySizeMiB;
    this.clientLimits = Object.freeze({ ...config.clientLimits });
    this.domain = config.domain;
    this.secrets = Object.freeze(
      Object.fromEntries(Object.entries(config.secrets).map(([name, ref]) => [name, parseSecretRef(ref) as SecretRef])),
    );
    this.env = Object.freeze({ ...config.env });
    this.source = config.source;
    this.start = config.start ?? DEFAULT_START;
    this.build = config.build;
    this.signalsReady = config.signalsReady ?? config.source === undefined;
    this.nodeVersion = config.nodeVersion;
  }

  /** The pinned patch release (and its checksum) of `nodeVersion`. */
  get nodeRelease(): NodeRelease {
    return NODE_RELEASES[this.nodeVersion];
  }

  /** Processes on a machine with `cores` CPU cores. */
  workerCount(cores: number): number {
    return this.workers === "auto" ? Math.max(1, cores) : this.workers;
  }

  /** PM2 `instances`: "max" lets PM2 match the machine's cores when the count is automatic. */
  get pm2Instances(): number | "max" {
    return this.workers === "auto" ? "max" : this.workers;
  }

  /** Ports used in fork mode: one process per port, starting at `port`. */
  forkPorts(count: number): number[] {
    return Array.from({ length: count }, (_, i) => this.port + i);
  }

  get upstreamIdleTimeoutSeconds(): number {
    return UPSTREAM_IDLE_TIMEOUT_SECONDS;
  }

  /** Node `server.keepAliveTimeout`: longer than every idle timeout in front of it. */
  get keepAliveTimeoutMs(): number {
    return (UPSTREAM_IDLE_TIMEOUT_SECONDS + KEEP_ALIVE_MARGIN_SECONDS) * 1000;
  }

  /** Node `server.headersTimeout`: must exceed keepAliveTimeout. */
  get headersTimeoutMs(): number {
    return this.keepAliveTimeoutMs + 1000;
  }

  /** PM2 `kill_timeout`: PM2 sends SIGKILL only after the app's own grace period has run out. */
  get killTimeoutMs(): number {
    return (this.shutdownGraceSeconds + SUPERVISOR_MARGIN_SECONDS) * 1000;
  }

  /** PM2 `listen_timeout`: how long a new process has to signal ready before PM2 gives up on it. */
  get listenTimeoutMs(): number {
    return 10_000;
  }

  /** How long a new process may take to answer the ready path before a deploy gives up on it. */
  get readyTimeoutSeconds(): number {
    return Math.ceil(this.listenTimeoutMs / 1000) + this.shutdownGraceSeconds;
  }

  /**
   * Load balancer deregistration delay (ALB target group, the local load balancer's drain): longer than PM2's
   * kill timeout, which is longer than the app's grace, so a machine leaves the rotation only after every
   * request it accepted has had its full grace period.
   */
  get deregistrationDelaySeconds(): number {
    return this.killTimeoutMs / 1000 + DRAIN_MARGIN_SECONDS;
  }

  /** PM2 `max_memory_restart`: restart before the kernel's OOM killer would. */
  get maxMemoryRestart(): string {
    return `${Math.floor(this.memoryMiB * 0.9)}M`;
  }

  /** Pod `terminationGracePeriodSeconds`: preStop delay, then the app's drain, then a margin before SIGKILL. */
  terminationGracePeriodSeconds(preStopSeconds: number): number {
    return preStopSeconds + this.shutdownGraceSeconds + KUBELET_MARGIN_SECONDS;
  }

  /** Environment every deployed process gets: the user's variables, then the derived settings, which win. */
  appEnv(port: number = this.port, host = "127.0.0.1", options: AppEnvOptions = {}): Record<string, string> {
    return {
      NODE_ENV: "production",
      ...this.env,
      PORT: String(port),
      HOST: host,
      METRICS_PORT: String(this.metricsPort),
      SHUTDOWN_GRACE_SECONDS: String(this.shutdownGraceSeconds),
      KEEP_ALIVE_TIMEOUT_MS: String(this.keepAliveTimeoutMs),
      HEADERS_TIMEOUT_MS: String(this.headersTimeoutMs),
      ...(options.release !== undefined ? { NODESCALE_RELEASE: options.release } : {}),
      ...(options.machine !== undefined ? { NODESCALE_MACHINE: options.machine } : {}),
    };
  }
}
