import type { NodeServiceSpec } from "../service/spec";
import type { ProcessPlan } from "./plan";
import { renderTemplate, safeToken } from "./template";

/** Where the rendered files put things on the target machine. */
export interface NginxSiteOptions {
  /** `listen` targets, e.g. ["127.0.0.1:8080"] locally or ["80 default_server", "[::]:80 default_server"] on a VM. */
  readonly listen: readonly string[];
  /** @default "_" (any host) */
  readonly serverName?: string;
  /** Access log path, or "off". */
  readonly accessLog: string;
}

function nginxId(name: string): string {
  return name.replace(/-/g, "_");
}

/** The Nginx site: an upstream over the plan's ports and a proxying server block. Pure. */
export function renderNginxSite(spec: NodeServiceSpec, plan: ProcessPlan, options: NginxSiteOptions): string {
  for (const target of options.listen) safeToken("listen", target, /^[A-Za-z0-9_.:[\] ]+$/);
  // With one port, list it twice: Nginx retries only on another upstream entry, and during a PM2 cluster
  // reload a retry on the same port lands on a live worker. max_fails=0: a port that refused a connection
  // (a process restarting) is tried again at once rather than marked down, or a port-by-port reload could
  // leave every entry marked down together; a refused loopback connect costs microseconds.
  const servers = plan.ports.length === 1 ? [plan.ports[0], plan.ports[0]] : plan.ports;
  return renderTemplate("nginx/site.conf", {
    name: spec.name,
    id: nginxId(spec.name),
    mode: plan.mode,
    upstreamServers: servers.map((port) => `    server 127.0.0.1:${port} max_fails=0;`).join("\n"),
    keepaliveConnections: 16 * plan.ports.length,
    upstreamIdleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
    nodeKeepAliveSeconds: spec.keepAliveTimeoutMs / 1000,
    listen: options.listen.map((l) => `    listen ${l};`).join("\n"),
    serverName: safeToken("serverName", options.serverName ?? "_"),
    maxBodySizeMiB: spec.maxBodySizeMiB,
    accessLog: safeToken("accessLog", options.accessLog),
    nextUpstreamTries: servers.length + 1,
  });
}

/** A self-contained nginx.conf for a private prefix (the local target). Pure. */
export function renderNginxMain(options: {
  readonly prefix: string;
  readonly siteFile: string;
  readonly workerProcesses?: number;
}): string {
  return renderTemplate("nginx/nginx.conf", {
    prefix: safeToken("prefix", options.prefix),
    siteFile: safeToken("siteFile", options.siteFile),
    workerProcesses: options.workerProcesses ?? 1,
  });
}

export interface EcosystemOptions {
  /** Folder holding the app's package.json and dist/. */
  readonly appDir: string;
  /** Folder for PM2's log files. */
  readonly logDir: string;
  /**
   * Release id the processes report (NODESCALE_RELEASE); a new id makes the reload pick up new code.
   * @default - none: the app reads RELEASE beside its code
   */
  readonly release?: string;
}

/** The PM2 apps of the plan: one cluster-mode app, or one fork-mode app per port. */
export function pm2Apps(spec: NodeServiceSpec, plan: ProcessPlan, options: EcosystemOptions): Record<string, unknown>[] {
  const common = {
    script: `${options.appDir}/dist/main.js`,
    cwd: options.appDir,
    wait_ready: true,
    listen_timeout: spec.listenTimeoutMs,
    kill_timeout: spec.killTimeoutMs,
    max_memory_restart: spec.maxMemoryRestart,
    exp_backoff_restart_delay: 100,
    merge_logs: true,
    time: true,
  };
  if (plan.mode === "cluster") {
    return [
      {
        name: spec.name,
        ...common,
        exec_mode: "cluster",
        instances: plan.instances,
        out_file: `${options.logDir}/${spec.name}.out.log`,
        error_file: `${options.logDir}/${spec.name}.err.log`,
        env: spec.appEnv(plan.ports[0], undefined, options.release),
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
    env: spec.appEnv(port, undefined, options.release),
  }));
}

/** The PM2 ecosystem file. Pure. */
export function renderEcosystem(spec: NodeServiceSpec, plan: ProcessPlan, options: EcosystemOptions): string {
  safeToken("appDir", options.appDir);
  safeToken("logDir", options.logDir);
  const apps = JSON.stringify(pm2Apps(spec, plan, options), null, 2).replace(/\n/g, "\n  ");
  return renderTemplate("pm2/ecosystem.config.js", { name: spec.name, mode: plan.mode, killTimeoutMs: spec.killTimeoutMs, appsJson: apps });
}

/** The rolling-reload script shared by the local target and VM redeploys. Pure. */
export function renderReloadScript(spec: NodeServiceSpec, plan: ProcessPlan, options: { readonly ecosystemFile: string }): string {
  return renderTemplate("vm/reload.sh", {
    name: spec.name,
    mode: plan.mode,
    ecosystemFile: safeToken("ecosystemFile", options.ecosystemFile),
    readyPath: spec.readyPath,
    readyTimeoutSeconds: Math.ceil(spec.listenTimeoutMs / 1000) + spec.shutdownGraceSeconds,
    ports: plan.ports.join(" "),
  });
}
