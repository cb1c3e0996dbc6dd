import { parseCidr } from "../service/cidr";
import type { NodeServiceSpec } from "../service/spec";
import { renderTemplate, safeToken, TemplateError } from "../template";
import type { ProcessPlan } from "./plan";

const LISTEN = /^[A-Za-z0-9_.:[\] ]+$/;

/** HTTPS on a site: where it listens and the certificate it serves. */
export interface TlsSite {
  /** `listen` targets for TLS, e.g. ["127.0.0.1:8443"] or ["443 default_server"]; served over HTTP/2 and HTTP/1.1. */
  readonly listen: readonly string[];
  /** PEM certificate chain. */
  readonly certificate: string;
  /** Its private key. */
  readonly certificateKey: string;
  /**
   * Send `Strict-Transport-Security` with this max-age (for a real domain; browsers ignore it for IP addresses).
   * @default - no HSTS header
   */
  readonly hstsSeconds?: number;
}

/** The security headers a site adds to answers whose app did not set them (the app's own value wins). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "strict-origin-when-cross-origin",
};

/** Where the rendered files put things on the target machine. */
export interface NginxSiteOptions {
  /** `listen` targets, e.g. ["127.0.0.1:8080"] locally or ["80 default_server", "[::]:80 default_server"] on a VM. */
  readonly listen: readonly string[];
  /**
   * Serve HTTPS too.
   * @default - HTTP only
   */
  readonly tls?: TlsSite;
  /**
   * Add SECURITY_HEADERS to answers that lack them.
   * @default true
   */
  readonly securityHeaders?: boolean;
  /**
   * Enforce `spec.clientLimits` per client address (429 with `Retry-After` beyond them).
   * @default true
   */
  readonly clientLimits?: boolean;
  /**
   * The site sits behind a load balancer that appends the client's address to `X-Forwarded-For`: limits key on
   * that address, not on the balancer's.
   * @default false
   */
  readonly behindLoadBalancer?: boolean;
  /**
   * Answer only this Host (the service's domain): a request for any other gets 421, except the ready path, which a
   * load balancer's health check asks for by the machine's address. Plain-HTTP listeners only (behind a balancer).
   * @default - any Host
   */
  readonly onlyHost?: string;
  /**
   * Addresses the load balancer in front connects from: a request from one of them keeps the `X-Forwarded-Proto`
   * the balancer set (https where it ended TLS), so the app builds its absolute URLs with the client's scheme. From
   * any other address the header is this hop's scheme, whatever the client sent.
   * @default - none: `X-Forwarded-Proto` is always this hop's scheme
   */
  readonly balancerCidrs?: readonly string[];
  /**
   * Behind a load balancer that ends TLS: send `Strict-Transport-Security` with this max-age on answers to requests
   * it received over HTTPS (`X-Forwarded-Proto: https`).
   * @default - no HSTS header
   */
  readonly forwardedHstsSeconds?: number;
  /**
   * HTTPS on the machine itself for `onlyHost` (with `tls`), its certificate from an ACME CA (Let's Encrypt). The
   * plain `listen` targets answer the CA's HTTP-01 challenges from this folder and redirect `onlyHost` to HTTPS; by
   * any other Host (the machine's own address) they answer only the health and ready paths, so a replacement
   * machine can be proven before the public address moves to it, and 421 for the rest. A TLS handshake for any
   * other name is refused.
   * @default - no ACME
   */
  readonly acmeWebroot?: string;
  /**
   * Serve Nginx's connection counters (`stub_status`) at /nginx_status on this loopback address only, e.g.
   * "127.0.0.1:8090": for a local metrics agent or an SSH tunnel, never for clients.
   * @default - no status listener
   */
  readonly statusListen?: string;
  /** @default "_" (any host) */
  readonly serverName?: string;
  /** Access log path, or "off". */
  readonly accessLog: string;
  /** File holding the upstream's `server` lines; the machine agent writes it at each deploy. */
  readonly upstreamFile: string;
}

/**
 * The file whose existence turns keep-alive off on a site or balancer (answers say "Connection: close"): the
 * machine agent creates it before it reloads a client-facing Nginx and removes it once the old workers are gone.
 * The agent derives the same name from the plan's `upstreamFile` (templates/vm/machine-agent.js: keepAliveOffFile).
 */
export function keepAliveOffFile(upstreamFile: string): string {
  return `${upstreamFile}.keepalive-off`;
}

export function nginxId(name: string): string {
  return name.replace(/-/g, "_");
}

/** `listen` lines: plain ones, then TLS ones with HTTP/2 (the `listen ... http2` form, which nginx 1.22-1.24 need). */
function listenLines(listen: readonly string[], tls: TlsSite | undefined): string {
  for (const target of [...listen, ...(tls?.listen ?? [])]) safeToken("listen", target, LISTEN);
  return [...listen.map((l) => `    listen ${l};`), ...(tls?.listen ?? []).map((l) => `    listen ${l} ssl http2;`)].join("\n");
}

/** The TLS directives of a server block, or nothing. Pure. */
export function renderTls(tls: TlsSite | undefined): string {
  if (tls === undefined) return "";
  if (tls.hstsSeconds !== undefined && (!Number.isInteger(tls.hstsSeconds) || tls.hstsSeconds < 1)) {
    throw new TemplateError(`hstsSeconds: ${tls.hstsSeconds} must be a whole number of seconds >= 1`);
  }
  const settings = renderTemplate("nginx/tls.conf", {
    certificate: safeToken("certificate", tls.certificate),
    certificateKey: safeToken("certificateKey", tls.certificateKey),
  });
  const hsts = tls.hstsSeconds === undefined ? "" : `    add_header Strict-Transport-Security "max-age=${tls.hstsSeconds}" always;\n`;
  return `${settings}${hsts}`;
}

/** Maps (http level) that yield each security header's value unless the app's answer already has the header. */
function securityHeaderMaps(id: string): string {
  return Object.entries(SECURITY_HEADERS)
    .map(([name, value]) => {
      const variable = name.toLowerCase().replace(/-/g, "_");
      return `map $upstream_http_${variable} $nodescale_${id}_${variable} {\n    ""      "${value}";\n    default "";\n}\n`;
    })
    .join("");
}

/**
 * `$nodescale_<id>_forwarded_proto` (http level): the balancer's `X-Forwarded-Proto` (http or https) on a request
 * from one of its addresses, this hop's `$scheme` otherwise. Nothing without balancer addresses.
 */
function forwardedProtoMaps(id: string, cidrs: readonly string[] | undefined): string {
  if (cidrs === undefined || cidrs.length === 0) return "";
  for (const cidr of cidrs) {
    if (parseCidr(cidr) === undefined) throw new TemplateError(`balancerCidrs: ${JSON.stringify(cidr)} is not a CIDR such as 10.30.0.0/16`);
  }
  return [
    "# The load balancer's X-Forwarded-Proto counts only on a request from the balancer's own addresses.",
    `geo $nodescale_${id}_from_balancer {`,
    "    default 0;",
    ...cidrs.map((c) => `    ${c} 1;`),
    "}",
    `map "$nodescale_${id}_from_balancer:$http_x_forwarded_proto" $nodescale_${id}_forwarded_proto {`,
    '    "1:https" https;',
    '    "1:http"  http;',
    "    default  $scheme;",
    "}",
    "",
  ].join("\n");
}

/** HSTS for requests a TLS-ending load balancer received over HTTPS (never on its plain-HTTP health checks). */
function forwardedHstsMap(id: string, seconds: number | undefined, trusted: boolean): string {
  if (seconds === undefined) return "";
  if (!Number.isInteger(seconds) || seconds < 1)
    throw new TemplateError(`forwardedHstsSeconds: ${seconds} must be a whole number of seconds >= 1`);
  return `map ${trusted ? `$nodescale_${id}_forwarded_proto` : "$http_x_forwarded_proto"} $nodescale_${id}_hsts {\n    https   "max-age=${seconds}";\n    default "";\n}\n`;
}

/** `add_header` lines for the maps above; an empty value adds nothing, so the app's own header stands. */
function securityHeaderLines(id: string): string {
  return Object.keys(SECURITY_HEADERS)
    .map((name) => `    add_header ${name} $nodescale_${id}_${name.toLowerCase().replace(/-/g, "_")} always;\n`)
    .join("");
}

/** Seconds a client over its limit is asked to wait: a request's worth of rate comes back within one. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Per-client request and connection limits: the zones (http level) and the server-level directives, or nothing.
 * Behind a load balancer the key is the last `X-Forwarded-For` entry, the one the balancer appended (a client
 * cannot forge it); otherwise the connection's address. Pure.
 */
export function renderClientLimits(
  spec: NodeServiceSpec,
  options: { readonly on: boolean; readonly behindLoadBalancer?: boolean; readonly securityHeaders?: boolean },
): { zones: string; server: string } {
  if (!options.on) return { zones: "", server: "" };
  const id = nginxId(spec.name);
  const { requestsPerSecond, burst, connections } = spec.clientLimits;
  const key = options.behindLoadBalancer ? `$nodescale_${id}_client` : "$binary_remote_addr";
  const zones = [
    ...(options.behindLoadBalancer
      ? [
          `# The client as the load balancer saw it: the address it appended last to X-Forwarded-For.`,
          `map $http_x_forwarded_for $nodescale_${id}_client {`,
          `    "~(?<client>[^,\\s]+)\\s*$" $client;`,
          `    default $remote_addr;`,
          `}`,
        ]
      : []),
    `# Per-client limits (service.clientLimits): ${requestsPerSecond} requests/s with a burst of ${burst}, ${connections} connections.`,
    `limit_req_zone ${key} zone=nodescale_${id}_requests:10m rate=${requestsPerSecond}r/s;`,
    `limit_conn_zone ${key} zone=nodescale_${id}_connections:10m;`,
    "",
  ].join("\n");
  const headers = (options.securityHeaders ?? true) ? securityHeaderLines(id).replace(/^ {4}/gm, "        ") : "";
  const server = [
    `    limit_req zone=nodescale_${id}_requests burst=${burst} nodelay;`,
    `    limit_conn nodescale_${id}_connections ${connections};`,
    "    limit_req_status 429;",
    "    limit_conn_status 429;",
    `    error_page 429 @nodescale_${id}_too_many;`,
    `    location @nodescale_${id}_too_many {`,
    `        add_header Retry-After ${RETRY_AFTER_SECONDS} always;`,
    `${headers}        default_type text/plain;`,
    `        return 429 "too many requests from your address; retry after ${RETRY_AFTER_SECONDS} s\\n";`,
    "    }",
    "",
  ].join("\n");
  return { zones, server };
}

/** Listen targets with any `default_server` flag removed (the catch-all server takes it when a site answers only its domain). */
const withoutDefaultServer = (listen: readonly string[]) => listen.map((l) => l.replace(/\s+default_server\b/, ""));

/** Nginx's connection counters on a loopback address, nothing else there. */
function statusServer(listen: string | undefined): string {
  if (listen === undefined) return "";
  if (!/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):\d{1,5}$/.test(listen)) {
    throw new TemplateError(`statusListen: ${JSON.stringify(listen)} must be a loopback address and port, such as 127.0.0.1:8090`);
  }
  return [
    "",
    "# Nginx's connection counters, on loopback only (never a public listener).",
    "server {",
    `    listen ${listen};`,
    "    server_name _;",
    "    access_log off;",
    "    location = /nginx_status {",
    "        stub_status;",
    "    }",
    "    location / {",
    "        return 404;",
    "    }",
    "}",
    "",
  ].join("\n");
}

/** A machine ending TLS for its domain with an ACME certificate: the domain, the challenge folder, the TLS settings. */
interface AcmeSite {
  readonly domain: string;
  readonly webroot: string;
  readonly tls: TlsSite;
}

/** With `acmeWebroot`: the domain (onlyHost), the folder and the TLS settings it needs, checked together. */
function acmeSite(options: NginxSiteOptions): AcmeSite | undefined {
  if (options.acmeWebroot === undefined) return undefined;
  if (options.tls === undefined || options.onlyHost === undefined) {
    throw new TemplateError("acmeWebroot: needs tls (the certificate's files) and onlyHost (the domain it is for)");
  }
  return { domain: safeToken("onlyHost", options.onlyHost), webroot: options.acmeWebroot, tls: options.tls };
}

/** Exact-path locations proxied to the app (health and readiness checks by the machine's address). */
function checkLocations(id: string, paths: readonly string[]): string[] {
  return paths.flatMap((path) => [
    `    location = ${path} {`,
    `        proxy_pass http://${id}_app;`,
    "        proxy_http_version 1.1;",
    '        proxy_set_header Connection "";',
    "        proxy_connect_timeout 2s;",
    "        proxy_read_timeout 10s;",
    "        proxy_next_upstream error timeout;",
    "    }",
  ]);
}

const UNKNOWN_HOST = ["    location / {", "        default_type text/plain;", '        return 421 "unknown host\\n";', "    }"];

/** The default server when a site answers only its domain: the ready path for the balancer's checks, 421 for the rest. */
function otherHostsServer(spec: NodeServiceSpec, options: NginxSiteOptions): string {
  if (options.tls !== undefined) throw new TemplateError("onlyHost: for plain-HTTP listeners behind a load balancer; not with tls");
  const id = nginxId(spec.name);
  const listen = withoutDefaultServer(options.listen)
    .map((l) => `    listen ${l} default_server;`)
    .join("\n");
  return [
    "",
    "# Any other Host (a request by the machine's address, a stray name) is refused, except the load balancer's",
    "# health check on the ready path.",
    "server {",
    listen,
    "    server_name _;",
    "    server_tokens off;",
    ...checkLocations(id, [safeToken("readyPath", spec.readyPath)]),
    ...UNKNOWN_HOST,
    "}",
    "",
  ].join("\n");
}

/**
 * The plain-HTTP and catch-all servers of a machine that ends TLS for its domain with an ACME certificate: challenges
 * and a redirect for the domain, challenges and the check paths by address, and no TLS handshake for other names.
 */
function acmeServers(spec: NodeServiceSpec, options: NginxSiteOptions, { domain, webroot, tls }: AcmeSite): string {
  const id = nginxId(spec.name);
  const plain = withoutDefaultServer(options.listen);
  const challenges = [
    "    location ^~ /.well-known/acme-challenge/ {",
    `        root ${safeToken("acmeWebroot", webroot)};`,
    "        default_type text/plain;",
    "    }",
  ];
  return [
    "",
    `# Plain HTTP for ${domain}: the CA's HTTP-01 challenges, everything else redirected to HTTPS.`,
    "server {",
    ...plain.map((l) => `    listen ${l};`),
    `    server_name ${domain};`,
    "    server_tokens off;",
    ...challenges,
    "    location / {",
    `        return 308 https://${domain}$request_uri;`,
    "    }",
    "}",
    "",
    "# Plain HTTP by any other Host (the machine's own address): challenges and the health and ready paths, so a",
    "# replacement machine is proven on its own address before the public one moves to it; 421 for the rest.",
    "server {",
    ...plain.map((l) => `    listen ${l} default_server;`),
    "    server_name _;",
    "    server_tokens off;",
    ...challenges,
    ...checkLocations(id, [...new Set([safeToken("healthPath", spec.healthPath), safeToken("readyPath", spec.readyPath)])]),
    ...UNKNOWN_HOST,
    "}",
    "",
    `# TLS for any name but ${domain} is refused at the handshake; a request whose Host is another name gets 421.`,
    "server {",
    ...withoutDefaultServer(tls.listen).map((l) => `    listen ${l} ssl default_server;`),
    "    server_name _;",
    "    server_tokens off;",
    "    ssl_reject_handshake on;",
    ...UNKNOWN_HOST,
    "}",
    "",
  ].join("\n");
}

/** The Nginx site: an upstream over the app's ports (from `upstreamFile`) and a proxying server block. Pure. */
export function renderNginxSite(spec: NodeServiceSpec, plan: ProcessPlan, options: NginxSiteOptions): string {
  const id = nginxId(spec.name);
  const acme = acmeSite(options);
  const securityHeaders = options.securityHeaders ?? true;
  const trustsBalancer = (options.balancerCidrs ?? []).length > 0;
  const limits = renderClientLimits(spec, {
    on: options.clientLimits ?? true,
    behindLoadBalancer: options.behindLoadBalancer,
    securityHeaders,
  });
  return renderTemplate("nginx/site.conf", {
    name: spec.name,
    id,
    mode: plan.mode,
    ports: plan.ports.join(", "),
    upstreamFile: safeToken("upstreamFile", options.upstreamFile),
    keepAliveOffFile: safeToken("upstreamFile", keepAliveOffFile(options.upstreamFile)),
    forwardedProto: trustsBalancer ? `$nodescale_${id}_forwarded_proto` : "$scheme",
    keepaliveConnections: 16 * plan.ports.length,
    upstreamIdleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
    nodeKeepAliveSeconds: spec.keepAliveTimeoutMs / 1000,
    // With onlyHost the catch-all below is the default server of each address, not this one. With ACME the plain
    // listeners belong to the challenge/redirect servers: this one is HTTPS only.
    listen: acme
      ? listenLines([], { ...acme.tls, listen: withoutDefaultServer(acme.tls.listen) })
      : listenLines(options.onlyHost === undefined ? options.listen : withoutDefaultServer(options.listen), options.tls),
    status: statusServer(options.statusListen),
    otherHosts: acme ? acmeServers(spec, options, acme) : options.onlyHost === undefined ? "" : otherHostsServer(spec, options),
    tls: renderTls(options.tls),
    securityHeaderMaps:
      (securityHeaders ? securityHeaderMaps(id) : "") +
      forwardedProtoMaps(id, options.balancerCidrs) +
      forwardedHstsMap(id, options.forwardedHstsSeconds, trustsBalancer),
    securityHeaders:
      (securityHeaders ? securityHeaderLines(id) : "") +
      (options.forwardedHstsSeconds !== undefined ? `    add_header Strict-Transport-Security $nodescale_${id}_hsts always;\n` : ""),
    limitZones: limits.zones,
    limits: limits.server,
    serverName: safeToken("serverName", options.onlyHost ?? options.serverName ?? "_"),
    maxBodySizeMiB: spec.maxBodySizeMiB,
    accessLog:
      options.accessLog === "off" ? "off" : `${safeToken("accessLog", options.accessLog)} nodescale_${id}_json buffer=64k flush=1s`,
  });
}

export interface LoadBalancerSiteOptions {
  /** `listen` targets of the load balancer. */
  readonly listen: readonly string[];
  /** How many machines it balances (for the header comment). */
  readonly machines: number;
  /** File holding the machines' `server` lines; the local target rewrites it during a rollout. */
  readonly upstreamFile: string;
  /** Access log path, or "off". */
  readonly accessLog: string;
  /**
   * Serve HTTPS too (the balancer is where clients connect).
   * @default - HTTP only
   */
  readonly tls?: TlsSite;
  /**
   * Enforce `spec.clientLimits` per client address here, where clients connect.
   * @default true
   */
  readonly clientLimits?: boolean;
}

/** Seconds a machine that failed a request stays out of the local load balancer's rotation. */
export const LB_FAIL_TIMEOUT_SECONDS = 1;

/** The local stack's load balancer in front of several simulated machines. Pure. */
export function renderLoadBalancerSite(spec: NodeServiceSpec, options: LoadBalancerSiteOptions): string {
  // Security headers come from the machines; a 429 answered here names none of theirs.
  const limits = renderClientLimits(spec, { on: options.clientLimits ?? true, securityHeaders: false });
  return renderTemplate("nginx/load-balancer.conf", {
    limitZones: limits.zones,
    limits: limits.server,
    name: spec.name,
    id: nginxId(spec.name),
    machines: options.machines,
    failTimeoutSeconds: LB_FAIL_TIMEOUT_SECONDS,
    upstreamFile: safeToken("upstreamFile", options.upstreamFile),
    keepAliveOffFile: safeToken("upstreamFile", keepAliveOffFile(options.upstreamFile)),
    idleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
    machineKeepAliveSeconds: spec.keepAliveTimeoutMs / 1000,
    listen: listenLines(options.listen, options.tls),
    tls: renderTls(options.tls),
    accessLog: safeToken("accessLog", options.accessLog),
  });
}

/** The load balancer's `server` lines: every machine, those being drained marked `down`. Pure. */
export function renderMachineServers(addresses: readonly string[], drained: readonly string[] = []): string {
  return `${addresses
    .map(
      (a) => `server ${safeToken("address", a)} max_fails=1 fail_timeout=${LB_FAIL_TIMEOUT_SECONDS}s${drained.includes(a) ? " down" : ""};`,
    )
    .join("\n")}\n`;
}

/** A self-contained nginx.conf for a private prefix (the local target). Pure. */
export function renderNginxMain(options: {
  readonly prefix: string;
  readonly siteFile: string;
  readonly workerProcesses?: number;
  /** The workers' user (`user` directive; only a root master switches): @default - Nginx's own (nobody under root) */
  readonly user?: string;
}): string {
  return renderTemplate("nginx/nginx.conf", {
    userDirective: options.user === undefined ? "" : `user ${safeToken("user", options.user)};\n`,
    prefix: safeToken("prefix", options.prefix),
    siteFile: safeToken("siteFile", options.siteFile),
    workerProcesses: options.workerProcesses ?? 1,
  });
}

export interface AppOptions {
  /** Folder holding the app's package.json and dist/ (a machine's `current` release link). */
  readonly appDir: string;
  /** Folder for PM2's log files. */
  readonly logDir: string;
  /**
   * Address the processes listen on.
   * @default "127.0.0.1"
   */
  readonly host?: string;
  /**
   * A file every process loads first (`node --require`, through PM2's node_args): NodeScale's release-headers
   * preload, so any app's answers name their process and release.
   * @default - none
   */
  readonly preload?: string;
  /**
   * Machine name the processes report.
   * @default - none: the processes report their host name
   */
  readonly machine?: string;
  /**
   * A folder private to the app's user where the processes of the group meet to answer one metrics scrape
   * (METRICS_SOCKET_DIR: each serves its own metrics on a Unix socket there; the one holding the metrics port
   * merges them).
   * @default - the app's choice (the sample: a folder under the system's temporary directory)
   */
  readonly metricsSocketDir?: string;
}

/** The PM2 apps of the plan: one cluster-mode app, or one fork-mode app per port. Pure. */
export function pm2Apps(spec: NodeServiceSpec, plan: ProcessPlan, options: AppOptions): Record<string, unknown>[] {
  safeToken("appDir", options.appDir);
  safeToken("logDir", options.logDir);
  const host = options.host ?? "127.0.0.1";
  if (options.preload !== undefined) safeToken("preload", options.preload);
  const common = {
    script: `${options.appDir}/${spec.start}`,
    cwd: options.appDir,
    // Without the app's "ready" message PM2 counts a process up once it listens; the agent then checks the
    // ready path on every port before anything depends on it.
    wait_ready: spec.signalsReady,
    // node_args, not NODE_OPTIONS: PM2 cluster workers get their environment only after Node has started.
    ...(options.preload !== undefined ? { node_args: [`--require=${options.preload}`] } : {}),
    listen_timeout: spec.listenTimeoutMs,
    kill_timeout: spec.killTimeoutMs,
    max_memory_restart: spec.maxMemoryRestart,
    exp_backoff_restart_delay: 100,
    merge_logs: true,
    // Lines are written as the app wrote them: JSON lines stay JSON (the app timestamps its own lines).
    time: false,
  };
  if (options.metricsSocketDir !== undefined) safeToken("metricsSocketDir", options.metricsSocketDir);
  const socketDir = options.metricsSocketDir !== undefined ? { METRICS_SOCKET_DIR: options.metricsSocketDir } : {};
  const env = (port: number) => ({ ...spec.appEnv(port, host, { machine: options.machine }), ...socketDir });
  if (plan.mode === "cluster") {
    return [
      {
        name: spec.name,
        ...common,
        exec_mode: "cluster",
        instances: plan.instances,
        out_file: `${options.logDir}/${spec.name}.out.log`,
        error_file: `${options.logDir}/${spec.name}.err.log`,
        env: env(plan.ports[0]),
      },
    ];
  }
  return plan.ports.map((port) => ({
    name: `${spec.name}-${port}`,
    ...common,
    exec_mode: "fork",
    instances: 1,
    out_file: `${options.logDir}/${spec.name}-${port}.out.log`,
    error_file: `${options.logDir}/${spec.name}-${port}.err.log`,
    env: env(port),
  }));
}
