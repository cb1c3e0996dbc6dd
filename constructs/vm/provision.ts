import type { NodeServiceSpec } from "../service/spec";
import type { ProcessPlan } from "./plan";
import { renderEcosystem, renderNginxSite, renderReloadScript } from "./render";
import { renderTemplate } from "./template";
import { NODE_LINUX_X64_SHA256, NODE_VERSION, PM2_VERSION } from "./versions";

export const VM_BASE = "/opt/nodescale";

export interface ProvisionOptions {
  /**
   * Shell text that sets BUNDLE_SHA256 and defines `fetch_bundle DEST` (from S3, or inline).
   * The script refuses a bundle whose SHA-256 does not match.
   */
  readonly bundleSource: string;
  /** Host name Nginx answers to. @default "_" */
  readonly serverName?: string;
}

/** The cloud-init user data for a VM: same Nginx site, ecosystem and reload script as the local target. Pure. */
export function renderProvisionScript(spec: NodeServiceSpec, plan: ProcessPlan, options: ProvisionOptions): string {
  const ecosystemFile = `${VM_BASE}/ecosystem.config.js`;
  return renderTemplate("cloud-init/provision.sh", {
    name: spec.name,
    nodeVersion: NODE_VERSION,
    nodeSha256: NODE_LINUX_X64_SHA256,
    pm2Version: PM2_VERSION,
    bundleSource: options.bundleSource,
    ecosystem: renderEcosystem(spec, plan, { appDir: `${VM_BASE}/current`, logDir: "/var/log/nodescale" }),
    reloadScript: renderReloadScript(spec, plan, { ecosystemFile }),
    nginxSite: renderNginxSite(spec, plan, {
      listen: ["80 default_server", "[::]:80 default_server"],
      serverName: options.serverName,
      accessLog: "/var/log/nginx/access.log",
    }),
  });
}
