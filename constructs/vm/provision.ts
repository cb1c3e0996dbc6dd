import type { NodeServiceSpec } from "../service/spec";
import { renderTemplate } from "../template";
import { type MachinePlan, machineAgentSource, renderMachinePlan } from "./machine-plan";
import type { ProcessPlan } from "./plan";
import { renderNginxSite } from "./render";
import { VM_SECRETS_FILE } from "./secrets-fetch";
import { PM2_VERSION } from "./versions";

export const VM_BASE = "/opt/nodescale";
export const VM_USER = "nodescale";
export const VM_PM2_HOME = "/var/lib/nodescale/.pm2";
export const VM_LOG_DIR = "/var/log/nodescale";
export const PM2_UNIT = "nodescale-pm2.service";
/** Processes assumed for `workers: "auto"` when sizing the stop timeout (the core count is not known at synth). */
const AUTO_WORKERS_STOP_ESTIMATE = 16;
/** PM2 stops this many processes at a time (its CONCURRENT_ACTIONS default). */
const PM2_STOP_PARALLELISM = 2;

export interface ProvisionOptions {
  /**
   * Shell text that sets BUNDLE_SHA256 and defines `fetch_bundle DEST` (from S3, or inline).
   * The agent refuses a bundle whose SHA-256 does not match.
   */
  readonly bundleSource: string;
  /**
   * Provision steps that open the release channel (the SSH deploy user), run after the app user is created.
   * @default - none: the release comes with the machine (user data) or from S3
   */
  readonly channelSetup?: string;
  /** Host name Nginx answers to. @default "_" */
  readonly serverName?: string;
  /**
   * The machine sits behind a load balancer (a group), not on its own public address.
   * @default false
   */
  readonly behindLoadBalancer?: boolean;
  /**
   * Provision steps that write the secrets' values to VM_SECRETS_FILE (run after Node.js is installed, before the
   * agent), e.g. ec2SecretsFetch(spec.secrets).
   * @default - none: the service has no secrets, or they arrive another way
   */
  readonly secretsSetup?: string;
  /**
   * HSTS max-age Nginx sends on requests the load balancer received over HTTPS (with spec.domain behind a load
   * balancer that ends TLS).
   * @default - none
   */
  readonly forwardedHstsSeconds?: number;
  /**
   * Nginx answers only this Host (other hosts get 421, except the balancer's ready-path check).
   * @default - any Host
   */
  readonly onlyHost?: string;
  /**
   * Nginx enforces `spec.clientLimits` per client (behind a load balancer: per address the balancer saw).
   * @default true
   */
  readonly clientLimits?: boolean;
}

/** The machine agent's plan on a cloud VM: Nginx and PM2 as systemd services, PM2 as an unprivileged user. Pure. */
export function renderVmMachinePlan(
  spec: NodeServiceSpec,
  plan: ProcessPlan,
  options: Pick<ProvisionOptions, "serverName" | "behindLoadBalancer" | "clientLimits" | "forwardedHstsSeconds" | "onlyHost"> = {},
): MachinePlan {
  const upstreamFile = `/etc/nginx/nodescale/${spec.name}.upstream.conf`;
  return renderMachinePlan(spec, plan, {
    machine: spec.name,
    clientFacing: !(options.behindLoadBalancer ?? false),
    baseDir: VM_BASE,
    logDir: VM_LOG_DIR,
    pm2: { home: VM_PM2_HOME, bin: "/usr/local/bin/pm2", user: VM_USER, systemdUnit: PM2_UNIT },
    secretsFile: VM_SECRETS_FILE,
    nginx: { kind: "systemd", pidFile: "/run/nginx.pid", upstreamFile, listen: "port 80" },
    files: [
      {
        path: `/etc/nginx/sites-available/${spec.name}.conf`,
        content: renderNginxSite(spec, plan, {
          listen: ["80 default_server", "[::]:80 default_server"],
          serverName: options.serverName,
          // With a domain behind a balancer: only that Host (the balancer's own listener rule refuses others too).
          ...(options.onlyHost !== undefined ? { onlyHost: options.onlyHost } : {}),
          clientLimits: options.clientLimits ?? true,
          behindLoadBalancer: options.behindLoadBalancer ?? false,
          ...(options.forwardedHstsSeconds !== undefined ? { forwardedHstsSeconds: options.forwardedHstsSeconds } : {}),
          accessLog: "/var/log/nginx/access.log",
          upstreamFile,
        }),
      },
    ],
  });
}

/** systemd's stop timeout for PM2: every process may need its whole kill timeout, two at a time, plus margin. */
export function pm2StopTimeoutSeconds(spec: NodeServiceSpec, plan: ProcessPlan): number {
  const processes = plan.expectedProcesses ?? AUTO_WORKERS_STOP_ESTIMATE;
  return Math.ceil(processes / PM2_STOP_PARALLELISM) * (spec.killTimeoutMs / 1000) + 10;
}

/** The PM2 unit: supervised, restarted when killed, hardened. Pure. */
export function renderPm2Unit(spec: NodeServiceSpec, plan: ProcessPlan): string {
  return renderTemplate("systemd/nodescale-pm2.service", {
    name: spec.name,
    user: VM_USER,
    pm2Home: VM_PM2_HOME,
    killTimeoutSeconds: spec.killTimeoutMs / 1000,
    timeoutStopSeconds: pm2StopTimeoutSeconds(spec, plan),
  });
}

/** The drop-in that makes the distribution's nginx.service restart when killed. Pure. */
export function renderNginxRestartDropIn(): string {
  return renderTemplate("systemd/nginx-restart.conf", {});
}

/**
 * The cloud-init user data for a VM: installs Node.js, PM2 and Nginx under systemd, then hands the machine to
 * the same agent the local target runs, with the same plan shape. Pure.
 */
export function renderProvisionScript(spec: NodeServiceSpec, plan: ProcessPlan, options: ProvisionOptions): string {
  return renderTemplate("cloud-init/provision.sh", {
    name: spec.name,
    nodeVersion: spec.nodeRelease.version,
    nodeSha256: spec.nodeRelease.linuxX64Sha256,
    pm2Version: PM2_VERSION,
    bundleSource: options.bundleSource,
    channelSetup: options.channelSetup ?? "",
    secretsSetup: options.secretsSetup ?? "",
    agent: machineAgentSource(),
    plan: JSON.stringify(renderVmMachinePlan(spec, plan, options)),
    pm2Unit: renderPm2Unit(spec, plan),
    nginxDropIn: renderNginxRestartDropIn(),
  });
}
