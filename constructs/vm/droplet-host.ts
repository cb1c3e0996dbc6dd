import { Droplet } from "@cdktf/provider-digitalocean/lib/droplet";
import { Firewall } from "@cdktf/provider-digitalocean/lib/firewall";
import { ReservedIp } from "@cdktf/provider-digitalocean/lib/reserved-ip";
import { ReservedIpAssignment } from "@cdktf/provider-digitalocean/lib/reserved-ip-assignment";
import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { Construct, Token } from "../cdk";
import type { PostDeployHealthCheck } from "../health/post-deploy-health-check";
import { assertAcmeServer, LETS_ENCRYPT_DIRECTORY } from "./acme";
import {
  assertSshRelease,
  DROPLET_DEFAULTS,
  DROPLET_EGRESS,
  type DropletMachineProps,
  type DropletUserData,
  dropletConfig,
  dropletUserData,
} from "./droplet-common";
import { newMachineReady } from "./new-machine-check";
import { type ProcessPlan, processPlan } from "./plan";
import { machineSoftware } from "./provision";
import { assertSshNotWorldOpen } from "./ssh";
import { hostProofKey, SshRelease } from "./ssh-release";

export { DROPLET_USER_DATA_LIMIT_BYTES, terraformLiteral } from "./droplet-common";

/** A single Droplet takes the common Droplet props, and how it gets its certificate for `spec.domain`. */
export interface DropletNodeHostProps extends DropletMachineProps {
  /**
   * With `spec.domain` (and `sshRelease`): the ACME directory the Droplet gets its certificate from.
   * @default "https://acme-v02.api.letsencrypt.org/directory"
   */
  readonly acmeServer?: string;
  /**
   * With `spec.domain`: e-mail for the ACME account.
   * @default - an account without e-mail
   */
  readonly acmeEmail?: string;
}

/**
 * One Ubuntu LTS Droplet running Nginx in front of PM2, behind a cloud firewall, on a reserved IP.
 * With `sshRelease`, a new release is pushed over SSH and rolled out in place by the machine agent (canary,
 * switch, converge: seconds, no outage). DigitalOcean replaces a Droplet whose user data changes (a changed spec,
 * or every release when it travels in user data): the new Droplet comes up first, must answer healthy with the
 * release on its own address, and only then does the reserved IP move to it and the old Droplet go (blue/green).
 */
export class DropletNodeHost extends Construct {
  /** The Droplet. */
  readonly droplet: Droplet;
  /** The public address; it moves to a replacement Droplet only once that one is healthy. */
  readonly reservedIp: ReservedIp;
  /** Moves the reserved IP to the Droplet once it answered healthy on its own address. */
  readonly reservedIpAssignment: ReservedIpAssignment;
  /** The check that a new Droplet answers before the reserved IP moves to it. */
  readonly readyBeforeAddressMoves: PostDeployHealthCheck;
  /** The cloud firewall (applied by tag, so a replacement Droplet has it from its first boot). */
  readonly firewall: Firewall;
  /** Ports and process counts PM2 runs, derived from the spec and mode. */
  readonly plan: ProcessPlan;
  /** The boot script and its plan-time size check. */
  readonly userData: DropletUserData;
  /** The release push over SSH (with `sshRelease`). */
  readonly release?: SshRelease;

  constructor(scope: Construct, id: string, props: DropletNodeHostProps) {
    super(scope, id);
    const mode = props.mode ?? DROPLET_DEFAULTS.mode;
    const region = props.region ?? DROPLET_DEFAULTS.region;
    const size = props.size ?? DROPLET_DEFAULTS.size;
    const sshKeyFingerprints = props.sshKeyFingerprints ?? [];
    const sshCidrs = props.sshCidrs ?? [];
    const acmeServer = props.acmeServer ?? LETS_ENCRYPT_DIRECTORY;
    assertSshNotWorldOpen("DropletNodeHost", sshCidrs);
    assertAcmeServer("DropletNodeHost", acmeServer);
    assertSshRelease("DropletNodeHost", props.sshRelease, sshCidrs);
    const spec = props.spec;
    this.plan = processPlan(spec, mode);
    this.userData = dropletUserData(
      this,
      "DropletNodeHost",
      spec,
      this.plan,
      props.bundle,
      {
        behindLoadBalancer: false,
        clientLimits: props.clientLimits ?? DROPLET_DEFAULTS.clientLimits,
        ...machineSoftware(props),
        ...(spec.domain !== undefined
          ? { machineTls: { domain: spec.domain, acmeServer, ...(props.acmeEmail !== undefined ? { email: props.acmeEmail } : {}) } }
          : {}),
      },
      props.sshRelease,
    );
    // The firewall follows the tag, so a replacement Droplet is covered from its first boot.
    const tag = new Tag(this, "Tag", { name: `nodescale-${spec.name}` }).name;
    // With the SSH channel, the Droplet proves itself with this key before the push sends anything.
    const proof = props.sshRelease !== undefined ? hostProofKey(this) : undefined;

    this.droplet = new Droplet(
      this,
      "Droplet",
      dropletConfig({
        name: spec.name,
        region,
        size,
        tag,
        sshKeyFingerprints,
        userData: this.userData,
        ...(proof !== undefined ? { hostProof: proof.sensitive } : {}),
      }),
    );
    this.reservedIp = new ReservedIp(this, "ReservedIp", { region });
    if (props.sshRelease !== undefined) {
      this.release = new SshRelease(this, "Release", {
        host: this.droplet.ipv4Address,
        machineId: this.droplet.id,
        bundle: props.bundle,
        key: props.sshRelease,
        secrets: spec.secrets,
        ...(proof !== undefined ? { hostProof: proof.forPush } : {}),
        // The reserved IP still points at the Droplet being replaced: its certificate comes over first.
        ...(spec.domain !== undefined ? { certificateFrom: this.reservedIp.ipAddress } : {}),
        dependsOn: [this.droplet],
      });
    }
    this.readyBeforeAddressMoves = newMachineReady(this, "ReadyBeforeAddressMoves", {
      spec,
      plan: this.plan,
      release: this.userData.release.sha256,
      url: `http://${this.droplet.ipv4Address}`,
      machineId: this.droplet.id,
      dependsOn: this.release ? [this.release.resource] : [],
    });
    this.reservedIpAssignment = new ReservedIpAssignment(this, "ReservedIpAssignment", {
      ipAddress: this.reservedIp.ipAddress,
      dropletId: Token.asNumber(this.droplet.id),
      dependsOn: [this.readyBeforeAddressMoves.resource],
    });

    const world = ["0.0.0.0/0", "::/0"];
    this.firewall = new Firewall(this, "Firewall", {
      name: `${spec.name}-web`,
      tags: [tag],
      inboundRule: [
        { protocol: "tcp", portRange: "80", sourceAddresses: world },
        { protocol: "tcp", portRange: "443", sourceAddresses: world },
        ...(sshCidrs.length > 0 ? [{ protocol: "tcp", portRange: "22", sourceAddresses: [...sshCidrs] }] : []),
      ],
      outboundRule: DROPLET_EGRESS,
    });
  }
}
