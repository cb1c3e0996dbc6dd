import { Droplet } from "@cdktf/provider-digitalocean/lib/droplet";
import { Firewall } from "@cdktf/provider-digitalocean/lib/firewall";
import { ReservedIp } from "@cdktf/provider-digitalocean/lib/reserved-ip";
import { ReservedIpAssignment } from "@cdktf/provider-digitalocean/lib/reserved-ip-assignment";
import { Construct, Token } from "../cdk";
import { InvalidPropError } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import type { AppBundle } from "./bundle";
import { inlineBundleSource } from "./bundle-source";
import { type ProcessPlan, processPlan, type VmMode } from "./plan";
import { renderProvisionScript } from "./provision";
import { assertSshNotWorldOpen } from "./ssh";

/** DigitalOcean's user-data limit. */
export const DROPLET_USER_DATA_LIMIT_BYTES = 64 * 1024;

/** Terraform reads `${` and `%{` in any string as template syntax; rendered scripts need them literal. */
export function terraformLiteral(text: string): string {
  // Function replacers: in a replacement string "$$" would itself collapse to "$".
  return text.replace(/\$\{/g, () => "$${").replace(/%\{/g, () => "%%{");
}

export interface DropletNodeHostProps {
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

/** One Ubuntu LTS Droplet running Nginx in front of PM2, behind a cloud firewall, on a reserved IP. */
export class DropletNodeHost extends Construct {
  readonly droplet: Droplet;
  readonly reservedIp: ReservedIp;
  readonly plan: ProcessPlan;
  readonly userData: string;

  constructor(scope: Construct, id: string, props: DropletNodeHostProps) {
    super(scope, id);
    const mode = props.mode ?? "cluster";
    const region = props.region ?? "nyc3";
    const size = props.size ?? "s-1vcpu-2gb";
    const sshKeyFingerprints = props.sshKeyFingerprints ?? [];
    const sshCidrs = props.sshCidrs ?? [];
    assertSshNotWorldOpen("DropletNodeHost", sshCidrs);
    const spec = props.spec;
    this.plan = processPlan(spec, mode);
    this.userData = renderProvisionScript(spec, this.plan, { bundleSource: inlineBundleSource(props.bundle) });
    const userDataBytes = Buffer.byteLength(this.userData);
    if (userDataBytes > DROPLET_USER_DATA_LIMIT_BYTES) {
      throw new InvalidPropError(
        `DropletNodeHost user data: ${userDataBytes} bytes is over DigitalOcean's limit of ${DROPLET_USER_DATA_LIMIT_BYTES} bytes; the app bundle is too large to send inline`,
      );
    }
    const tag = `nodescale-${spec.name}`;

    this.droplet = new Droplet(this, "Droplet", {
      name: spec.name,
      image: "ubuntu-24-04-x64",
      region,
      size,
      monitoring: true,
      ipv6: true,
      sshKeys: [...sshKeyFingerprints],
      tags: [tag, "nodescale"],
      // DigitalOcean replaces the Droplet when user data changes: a new release is a new machine.
      userData: terraformLiteral(this.userData),
      gracefulShutdown: true,
    });
    this.reservedIp = new ReservedIp(this, "ReservedIp", { region });
    new ReservedIpAssignment(this, "ReservedIpAssignment", {
      ipAddress: this.reservedIp.ipAddress,
      dropletId: Token.asNumber(this.droplet.id),
    });

    const world = ["0.0.0.0/0", "::/0"];
    new Firewall(this, "Firewall", {
      name: `${spec.name}-web`,
      dropletIds: [Token.asNumber(this.droplet.id)],
      inboundRule: [
        { protocol: "tcp", portRange: "80", sourceAddresses: world },
        { protocol: "tcp", portRange: "443", sourceAddresses: world },
        ...(sshCidrs.length > 0 ? [{ protocol: "tcp", portRange: "22", sourceAddresses: [...sshCidrs] }] : []),
      ],
      outboundRule: [
        { protocol: "tcp", portRange: "1-65535", destinationAddresses: world },
        { protocol: "udp", portRange: "1-65535", destinationAddresses: world },
        { protocol: "icmp", destinationAddresses: world },
      ],
    });
  }
}
