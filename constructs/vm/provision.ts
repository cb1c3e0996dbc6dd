import { HSTS_MAX_AGE_SECONDS } from "../service/rules";
import type { NodeServiceSpec } from "../service/spec";
import { renderTemplate, withoutShellCommentLines } from "../template";
import { MACHINE_TLS, renderCertificateScript, renderCertificateUnits } from "./acme";
import { type MachinePlan, machineAgentSource, renderMachinePlan } from "./machine-plan";
import type { ProcessPlan } from "./plan";
import { renderNginxSite } from "./render";
import { VM_SECRETS_FILE } from "./secrets-fetch";
import { PM2_VERSION } from "./versions";

export const VM_BASE = "/opt/nodescale";
export const VM_USER = "nodescale";
export const VM_PM2_HOME = "/var/lib/nodescale/.pm2";
export const VM_LOG_DIR = "/var/log/nodescale";
/** The PM2 unit's RuntimeDirectory: the app user's, gone when the unit stops (see AppOptions.metricsSocketDir). */
export const VM_METRICS_SOCKET_DIR = "/run/nodescale-metrics";
export const PM2_UNIT = "nodescale-pm2.service";
/**
 * The instance metadata service's addresses (EC2 IPv4 and IPv6; DigitalOcean's is the same IPv4 address), which the
 * PM2 unit denies to the app's processes (`IPAddressDeny=`).
 */
export const METADATA_ADDRESSES = ["169.254.169.254", "fd00:ec2::254"] as const;
/** Where a VM's Nginx serves its connection counters (stub_status): loopback only. */
export const VM_NGINX_STATUS = "127.0.0.1:8090";
/** Processes assumed for `workers: "auto"` when sizing the stop timeout (the core count is not known at synth). */
const AUTO_WORKERS_STOP_ESTIMATE = 16;
/** PM2 stops this many processes at a time (its CONCURRENT_ACTIONS default). */
const PM2_STOP_PARALLELISM = 2;

/** What a VM's provisioning installs and keeps, the same on EC2 and Droplets (the VM leaves' props extend it). */
export interface MachineSoftwareProps {
  /**
   * Where the machines download Node.js: a mirror of https://nodejs.org/dist (same layout; the pinned SHA-256 is
   * checked either way).
   * @default "https://nodejs.org/dist"
   */
  readonly nodeMirror?: string;
  /**
   * Releases each machine keeps for a quick roll back, the current one included; older ones are removed.
   * @default 3
   */
  readonly keepReleases?: number;
}

/** The software props that were given, as provision options (unset ones keep their defaults). */
export function machineSoftware(props: MachineSoftwareProps): MachineSoftwareProps {
  return {
    ...(props.nodeMirror !== undefined ? { nodeMirror: props.nodeMirror } : {}),
    ...(props.keepReleases !== undefined ? { keepReleases: props.keepReleases } : {}),
  };
}

export interface ProvisionOptions extends MachineSoftwareProps {
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
  /**
   * Provision lines that install the machine agent at `${VM_BASE}/bin/machine-agent.js` (e.g. s3AgentInstall).
   * @default - the agent travels inside the script
   */
  readonly agentInstall?: string;
  /** Host name Nginx answers to. @default "_" */
  readonly serverName?: string;
  /**
   * The machine sits behind a load balancer (a group), not on its own public address.
   * @default false
   */
  readonly behindLoadBalancer?: boolean;
  /**
   * With `behindLoadBalancer`: the addresses the balancer connects from (NginxSiteOptions.balancerCidrs), whose
   * `X-Forwarded-Proto` the app then receives.
   * @default - none: the app sees this hop's scheme (http)
   */
  readonly balancerCidrs?: readonly string[];
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
  /**
   * HTTPS on the machine itself for a domain, with a certificate from an ACME CA (one machine on its own address).
   * @default - no TLS on the machine
   */
  readonly machineTls?: MachineTlsOptions;
}

/** Node.js's own download site. */
export const NODE_DIST = "https://nodejs.org/dist";

/** HTTPS on a single machine: its domain, the ACME CA, and how a replacement machine gets the certificate. */
export interface MachineTlsOptions {
  readonly domain: string;
  /** @default LETS_ENCRYPT_DIRECTORY */
  readonly acmeServer?: string;
  /** @default - no e-mail on the ACME account */
  readonly email?: string;
  /**
   * Provision lines that take over the certificate kept by the machine this one replaces (before any certificate is
   * requested; verified, installed only as MACHINE_TLS.imported), so the new machine serves it from its first answer.
   * @default - none: a new machine starts without one
   */
  readonly restoreState?: string;
  /**
   * Lines run after each issuance and renewal that keep the certificate (chain and key) for a replacement.
   * @default - none
   */
  readonly saveState?: readonly string[];
}

/** The machine agent's plan on a cloud VM: Nginx and PM2 as systemd services, PM2 as an unprivileged user. Pure. */
export function renderVmMachinePlan(
  spec: NodeServiceSpec,
  plan: ProcessPlan,
  options: Pick<
    ProvisionOptions,
    | "serverName"
    | "behindLoadBalancer"
    | "balancerCidrs"
    | "clientLimits"
    | "forwardedHstsSeconds"
    | "onlyHost"
    | "machineTls"
    | "keepReleases"
  > = {},
): MachinePlan {
  const upstreamFile = `/etc/nginx/nodescale/${spec.name}.upstream.conf`;
  const domain = options.machineTls?.domain;
  return renderMachinePlan(spec, plan, {
    machine: spec.name,
    clientFacing: !(options.behindLoadBalancer ?? false),
    baseDir: VM_BASE,
    logDir: VM_LOG_DIR,
    metricsSocketDir: VM_METRICS_SOCKET_DIR,
    ...(options.keepReleases !== undefined ? { keepReleases: options.keepReleases } : {}),
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
          // One machine with a domain ends TLS itself, with its ACME certificate.
          ...(domain !== undefined
            ? {
                onlyHost: domain,
                acmeWebroot: MACHINE_TLS.webroot,
                tls: {
                  listen: ["443", "[::]:443"],
                  certificate: `${MACHINE_TLS.link}/fullchain.pem`,
                  certificateKey: `${MACHINE_TLS.link}/privkey.pem`,
                  hstsSeconds: HSTS_MAX_AGE_SECONDS,
                },
              }
            : {}),
          clientLimits: options.clientLimits ?? true,
          behindLoadBalancer: options.behindLoadBalancer ?? false,
          ...(options.behindLoadBalancer && options.balancerCidrs !== undefined ? { balancerCidrs: options.balancerCidrs } : {}),
          ...(options.forwardedHstsSeconds !== undefined ? { forwardedHstsSeconds: options.forwardedHstsSeconds } : {}),
          accessLog: "/var/log/nginx/access.log",
          statusListen: VM_NGINX_STATUS,
          upstreamFile,
        }),
      },
    ],
  });
}

export const CERTIFICATE_SCRIPT = `${VM_BASE}/bin/certificate.sh`;
export const VM_AGENT = `${VM_BASE}/bin/machine-agent.js`;

/** The machine agent inside the script (Droplets: no bucket to fetch it from). */
function inlineAgentInstall(): string {
  return [
    `cat > "${VM_AGENT}.tmp" <<'NODESCALE_AGENT'`,
    machineAgentSource(),
    "NODESCALE_AGENT",
    `mv -f "${VM_AGENT}.tmp" "${VM_AGENT}"`,
  ].join("\n");
}

/**
 * Provision lines for HTTPS on the machine: certbot, the certificate script (comment lines left out: user data is
 * size-limited), its timer, certbot's renewal timer, and a placeholder certificate so Nginx starts before the CA's.
 */
function machineTlsSetup(tls: MachineTlsOptions): string {
  const script = renderCertificateScript({
    domain: tls.domain,
    ...(tls.acmeServer !== undefined ? { acmeServer: tls.acmeServer } : {}),
    ...(tls.email !== undefined ? { email: tls.email } : {}),
    ...(tls.saveState !== undefined ? { saveState: tls.saveState } : {}),
    self: CERTIFICATE_SCRIPT,
  });
  const units = renderCertificateUnits(tls.domain, CERTIFICATE_SCRIPT);
  const file = (path: string, mode: string, text: string, marker: string) =>
    [`cat > ${path}.tmp <<'${marker}'`, text.trimEnd(), marker, `chmod ${mode} ${path}.tmp`, `mv -f ${path}.tmp ${path}`].join("\n");
  return [
    `log "HTTPS for ${tls.domain}: an ACME certificate through certbot"`,
    "if ! command -v certbot >/dev/null 2>&1; then",
    "  apt-get update -q",
    "  apt-get install -y -q certbot",
    "fi",
    `install -d -m 0755 ${MACHINE_TLS.webroot} /etc/nodescale /etc/nodescale/tls`,
    ...(tls.restoreState !== undefined ? [tls.restoreState] : []),
    file(CERTIFICATE_SCRIPT, "0700", withoutShellCommentLines(script), "NODESCALE_CERTIFICATE"),
    file("/etc/systemd/system/nodescale-certificate.service", "0644", withoutShellCommentLines(units.service), "NODESCALE_UNIT"),
    file("/etc/systemd/system/nodescale-certificate.timer", "0644", withoutShellCommentLines(units.timer), "NODESCALE_UNIT"),
    `${CERTIFICATE_SCRIPT} placeholder`,
    "systemctl daemon-reload",
    "systemctl enable --now certbot.timer nodescale-certificate.timer",
    "",
  ].join("\n");
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
    logDir: VM_LOG_DIR,
    metricsRuntimeDirectory: VM_METRICS_SOCKET_DIR.replace(/^\/run\//, ""),
    killTimeoutSeconds: spec.killTimeoutMs / 1000,
    timeoutStopSeconds: pm2StopTimeoutSeconds(spec, plan),
    metadataAddresses: METADATA_ADDRESSES.join(" "),
  });
}

/** Log rotation on a VM: at most this many MiB per log file before it rotates, checked every hour. */
export const VM_LOG_MAX_MIB = 100;
/** Rotations kept per log file (compressed). */
export const VM_LOG_ROTATIONS = 14;

/** logrotate's settings for PM2's and Nginx's logs, and the timer drop-in that runs it hourly. Pure. */
export function renderLogRotation(spec: NodeServiceSpec): { logrotateApp: string; logrotateNginx: string; logrotateTimer: string } {
  const bounds = { maxSizeMiB: VM_LOG_MAX_MIB, keep: VM_LOG_ROTATIONS };
  return {
    logrotateApp: renderTemplate("logrotate/nodescale", { name: spec.name, logDir: VM_LOG_DIR, pm2Home: VM_PM2_HOME, ...bounds }).trimEnd(),
    logrotateNginx: renderTemplate("logrotate/nginx", { pidFile: "/run/nginx.pid", ...bounds }).trimEnd(),
    logrotateTimer: renderTemplate("systemd/logrotate-hourly.conf", {}).trimEnd(),
  };
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
    nodeMirror: (options.nodeMirror ?? NODE_DIST).replace(/\/+$/, ""),
    provisionUnit: renderTemplate("systemd/nodescale-provision.service", {}).trimEnd(),
    pm2Version: PM2_VERSION,
    bundleSource: options.bundleSource,
    channelSetup: options.channelSetup ?? "",
    tlsSetup: options.machineTls === undefined ? "" : machineTlsSetup(options.machineTls),
    tlsFirstTry:
      options.machineTls === undefined
        ? ""
        : `# Right away if the domain already reaches this machine; otherwise its timer tries every minute.\n${CERTIFICATE_SCRIPT} || true\n`,
    secretsSetup: options.secretsSetup ?? "",
    agentInstall: options.agentInstall ?? inlineAgentInstall(),
    plan: JSON.stringify(renderVmMachinePlan(spec, plan, options)),
    pm2Unit: renderPm2Unit(spec, plan),
    nginxDropIn: renderNginxRestartDropIn(),
    ...renderLogRotation(spec),
  });
}
