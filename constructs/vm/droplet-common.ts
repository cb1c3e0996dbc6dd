import type { DropletConfig } from "@cdktf/provider-digitalocean/lib/droplet";
import type { FirewallOutboundRule } from "@cdktf/provider-digitalocean/lib/firewall";
import { InvalidPropError } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import type { AppBundle } from "./bundle";
import { inlineBundleSource } from "./bundle-source";
import type { ProcessPlan, VmMode } from "./plan";
import { renderProvisionScript } from "./provision";

/** DigitalOcean's user-data limit. */
export const DROPLET_USER_DATA_LIMIT_BYTES = 64 * 1024;

/** What every Droplet-based construct takes. */
export interface DropletMachineProps {
  readonly spec: NodeServiceSpec;
  /** The built app; it travels inside the user data. */
  readonly bundle: AppBundle;
  /**
   * PM2 cluster mode on one port, or fork mode with one process per port.
   * @default "cluster"
   */
  readonly mode?: VmMode;
  /**
   * Region slug.
   * @default "nyc3"
   */
  readonly region?: string;
  /**
   * Droplet size slug.
   * @default "s-1vcpu-2gb"
   */
  readonly size?: string;
  /**
   * Fingerprints of SSH keys already in the DigitalOcean account.
   * @default []
   */
  readonly sshKeyFingerprints?: readonly string[];
  /**
   * CIDRs allowed to reach SSH; none by default (use the DigitalOcean console).
   * @default []
   */
  readonly sshCidrs?: readonly string[];
}

/** Terraform reads `${` and `%{` in any string as template syntax; rendered scripts need them literal. */
export function terraformLiteral(text: string): string {
  // Function replacers: in a replacement string "$$" would itself collapse to "$".
  return text.replace(/\$\{/g, () => "$${").replace(/%\{/g, () => "%%{");
}

/** The provision script with the bundle inline, refused when over DigitalOcean's user-data limit. */
export function dropletUserData(
  owner: string,
  spec: NodeServiceSpec,
  plan: ProcessPlan,
  bundle: AppBundle,
  behindLoadBalancer = false,
): string {
  const script = renderProvisionScript(spec, plan, { bundleSource: inlineBundleSource(bundle), behindLoadBalancer });
  const bytes = Buffer.byteLength(script);
  if (bytes > DROPLET_USER_DATA_LIMIT_BYTES) {
    throw new InvalidPropError(
      `${owner} user data: ${bytes} bytes is over DigitalOcean's limit of ${DROPLET_USER_DATA_LIMIT_BYTES} bytes; the app bundle is too large to send inline`,
    );
  }
  return script;
}

/**
 * The settings every NodeScale Droplet shares. DigitalOcean replaces a Droplet whose user data changes, so the
 * replacement is created first (the caller proves it healthy before the old one's address or turn goes).
 */
export function dropletConfig(options: {
  readonly name: string;
  readonly region: string;
  readonly size: string;
  readonly tag: string;
  readonly sshKeyFingerprints: readonly string[];
  readonly userData: string;
}): DropletConfig {
  return {
    name: options.name,
    image: "ubuntu-24-04-x64",
    region: options.region,
    size: options.size,
    monitoring: true,
    ipv6: true,
    sshKeys: [...options.sshKeyFingerprints],
    tags: [options.tag, "nodescale"],
    userData: terraformLiteral(options.userData),
    gracefulShutdown: true,
    lifecycle: { createBeforeDestroy: true },
  };
}

/** Outbound from the Droplets: OS packages, the Node.js download, DigitalOcean's metadata and monitoring. */
export const DROPLET_EGRESS: FirewallOutboundRule[] = [
  { protocol: "tcp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
  { protocol: "udp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
  { protocol: "icmp", destinationAddresses: ["0.0.0.0/0", "::/0"] },
];
