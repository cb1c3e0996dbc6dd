import { createHash } from "node:crypto";
import { Certificate } from "@cdktf/provider-digitalocean/lib/certificate";
import { Droplet } from "@cdktf/provider-digitalocean/lib/droplet";
import { Firewall } from "@cdktf/provider-digitalocean/lib/firewall";
import { Loadbalancer } from "@cdktf/provider-digitalocean/lib/loadbalancer";
import { Tag } from "@cdktf/provider-digitalocean/lib/tag";
import { Construct } from "../cdk";
import { PostDeployHealthCheck } from "../health/post-deploy-health-check";
import { invalidProp } from "../service/errors";
import { HSTS_MAX_AGE_SECONDS } from "../service/rules";
import {
  assertSshRelease,
  DROPLET_DEFAULTS,
  DROPLET_EGRESS,
  DROPLET_NODE_GROUP_DEFAULTS,
  type DropletMachineProps,
  type DropletUserData,
  dropletConfig,
  dropletUserData,
} from "./droplet-common";
import { NEW_MACHINE_SECONDS } from "./new-machine-check";
import { type ProcessPlan, processPlan } from "./plan";
import { machineSoftware } from "./provision";
import { assertSshNotWorldOpen } from "./ssh";
import { hostProofKey, SshRelease } from "./ssh-release";

export interface DropletNodeGroupProps extends DropletMachineProps {
  /**
   * Droplets behind the load balancer.
   * @default 2
   */
  readonly machines?: number;
}

/**
 * Several Ubuntu LTS Droplets (Nginx in front of PM2, the same provision script and machine agent as one
 * Droplet) behind a DigitalOcean Load Balancer that health-checks the ready path; the firewall admits HTTP from
 * the load balancer only. With `sshRelease`, a new release is pushed over SSH to one Droplet at a time and rolled
 * out in place by the machine agent. A changed spec (or, without `sshRelease`, every release) replaces the Droplets
 * one at a time: each new Droplet (named for its generation, so it is told apart from the one it replaces) must be
 * in the load balancer's rotation with the new release before the next one is replaced, so the balancer always has
 * healthy targets.
 */
/** The private ranges a DigitalOcean VPC's addresses come from (RFC 1918). */
export const DO_VPC_CIDRS: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

export class DropletNodeGroup extends Construct {
  /** With `spec.domain`: its Let's Encrypt certificate, issued and renewed by DigitalOcean. */
  readonly certificate?: Certificate;
  /** Ports and process counts PM2 runs on each Droplet. */
  readonly plan: ProcessPlan;
  /** The boot script every Droplet runs and its plan-time size check. */
  readonly userData: DropletUserData;
  /** The Droplets, replaced one at a time. */
  readonly droplets: Droplet[];
  /** The DigitalOcean Load Balancer, health-checking the ready path. */
  readonly loadBalancer: Loadbalancer;
  /** Admits HTTP only from the load balancer (and SSH only from the listed addresses). */
  readonly firewall: Firewall;
  /** One per Droplet: it is in rotation with the new release (the next replacement waits on it). */
  readonly inRotation: PostDeployHealthCheck[];
  /** With `sshRelease`: one push per Droplet, one Droplet at a time. */
  readonly releases: SshRelease[];

  constructor(scope: Construct, id: string, props: DropletNodeGroupProps) {
    super(scope, id);
    const mode = props.mode ?? DROPLET_DEFAULTS.mode;
    const machines = props.machines ?? DROPLET_NODE_GROUP_DEFAULTS.machines;
    const region = props.region ?? DROPLET_DEFAULTS.region;
    const size = props.size ?? DROPLET_DEFAULTS.size;
    const sshKeyFingerprints = props.sshKeyFingerprints ?? [];
    const sshCidrs = props.sshCidrs ?? [];
    if (!Number.isInteger(machines) || machines < 2 || machines > 50) {
      invalidProp("DropletNodeGroup", "machines", machines, "must be a whole number 2-50 (one machine is DropletNodeHost)");
    }
    assertSshNotWorldOpen("DropletNodeGroup", sshCidrs);
    assertSshRelease("DropletNodeGroup", props.sshRelease, sshCidrs);
    const spec = props.spec;
    this.plan = processPlan(spec, mode);
    this.userData = dropletUserData(
      this,
      "DropletNodeGroup",
      spec,
      this.plan,
      props.bundle,
      {
        behindLoadBalancer: true,
        // The balancer reaches the Droplets over the region's VPC, whose range is private (RFC 1918) and chosen by
        // DigitalOcean; the firewall below admits port 80 from the balancer only.
        balancerCidrs: DO_VPC_CIDRS,
        clientLimits: props.clientLimits ?? DROPLET_DEFAULTS.clientLimits,
        ...machineSoftware(props),
        ...(spec.domain !== undefined ? { forwardedHstsSeconds: HSTS_MAX_AGE_SECONDS, onlyHost: spec.domain } : {}),
      },
      props.sshRelease,
    );
    // A new generation (release or spec) gets new names: the balancer's answers tell new from old.
    const generation = createHash("sha256").update(this.userData.script).digest("hex").slice(0, 8);
    const tag = new Tag(this, "Tag", { name: `nodescale-${spec.name}` }).name;

    const domain = spec.domain;
    if (domain !== undefined) {
      // Issued and renewed by DigitalOcean (Let's Encrypt); the domain's DNS must be managed by DigitalOcean.
      this.certificate = new Certificate(this, "Certificate", {
        name: `${spec.name}-${domain.replace(/\./g, "-")}`.slice(0, 63),
        type: "lets_encrypt",
        domains: [domain],
        lifecycle: { createBeforeDestroy: true },
      });
    }
    this.loadBalancer = new Loadbalancer(this, "LoadBalancer", {
      name: `${spec.name}-lb`,
      region,
      dropletTag: tag,
      forwardingRule: [
        { entryPort: 80, entryProtocol: "http", targetPort: 80, targetProtocol: "http" },
        ...(this.certificate
          ? [{ entryPort: 443, entryProtocol: "https", targetPort: 80, targetProtocol: "http", certificateName: this.certificate.name }]
          : []),
      ],
      // With a domain, plain HTTP only redirects.
      ...(this.certificate ? { redirectHttpToHttps: true } : {}),
      healthcheck: {
        protocol: "http",
        port: 80,
        path: spec.readyPath,
        checkIntervalSeconds: 5,
        responseTimeoutSeconds: 3,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      },
      // Below Nginx's client keep-alive and Node's keepAliveTimeout: the balancer never reuses a closed socket.
      httpIdleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
      enableBackendKeepalive: true,
    });

    this.droplets = [];
    this.inRotation = [];
    this.releases = [];
    // With the SSH channel, each Droplet proves itself with this key before a push sends it anything.
    const proof = props.sshRelease !== undefined ? hostProofKey(this) : undefined;
    for (let i = 0; i < machines; i++) {
      const name = `${spec.name}-${i + 1}-${generation}`;
      const previous = this.inRotation[i - 1];
      const droplet = new Droplet(this, `Droplet${i + 1}`, {
        ...dropletConfig({
          name,
          region,
          size,
          tag,
          sshKeyFingerprints,
          userData: this.userData,
          ...(proof !== undefined ? { hostProof: proof.sensitive } : {}),
        }),
        // The one it replaces leaves only after this one is in rotation; the next waits for this one.
        dependsOn: [previous ? previous.resource : this.loadBalancer],
      });
      this.droplets.push(droplet);
      // In place, one machine at a time: the agent keeps each one serving while it converges.
      const previousRelease = this.releases[i - 1];
      const release =
        props.sshRelease === undefined
          ? undefined
          : new SshRelease(this, `Release${i + 1}`, {
              host: droplet.ipv4Address,
              machineId: droplet.id,
              bundle: props.bundle,
              key: props.sshRelease,
              secrets: spec.secrets,
              ...(proof !== undefined ? { hostProof: proof.forPush } : {}),
              dependsOn: [droplet, ...(previousRelease ? [previousRelease.resource] : [])],
            });
      if (release) this.releases.push(release);
      this.inRotation.push(
        new PostDeployHealthCheck(this, `InRotation${i + 1}`, {
          // With a domain the balancer redirects HTTP: ask it over HTTPS, for the domain.
          url: domain === undefined ? `http://${this.loadBalancer.ip}` : `https://${this.loadBalancer.ip}`,
          ...(domain !== undefined ? { host: domain } : {}),
          spec,
          waitForMachine: name,
          expectRelease: this.userData.release.sha256,
          timeoutSeconds: NEW_MACHINE_SECONDS,
          triggers: { machine: droplet.id },
          runOnEveryApply: false,
          dependsOn: release ? [release.resource] : [],
        }),
      );
    }

    this.firewall = new Firewall(this, "Firewall", {
      name: `${spec.name}-machines`,
      tags: [tag],
      inboundRule: [
        // Nothing from the internet: HTTP from the load balancer only.
        { protocol: "tcp", portRange: "80", sourceLoadBalancerUids: [this.loadBalancer.id] },
        ...(sshCidrs.length > 0 ? [{ protocol: "tcp", portRange: "22", sourceAddresses: [...sshCidrs] }] : []),
      ],
      outboundRule: DROPLET_EGRESS,
    });
  }
}
