import { gzipSync } from "node:zlib";
import type { DropletConfig } from "@cdktf/provider-digitalocean/lib/droplet";
import type { FirewallOutboundRule } from "@cdktf/provider-digitalocean/lib/firewall";
import type { IConstruct } from "../cdk";
import { type PlanRefusal, refuseAtPlan } from "../refuse-at-plan";
import type { AppBundle } from "../release/bundle";
import { withoutDependencies } from "../release/machine-install";
import { invalidProp } from "../service/errors";
import { describeSecretRef, missingEnvSecretsMessage, readEnvSecrets } from "../service/secrets";
import type { NodeServiceSpec } from "../service/spec";
import { inlineBundleSource } from "./bundle-source";
import { singleMachineDomainRefusal } from "./domain";
import { DEFAULT_VM_MODE, type ProcessPlan, type VmMode } from "./plan";
import { CERTIFICATE_SCRIPT, type MachineSoftwareProps, machineSoftware, type ProvisionOptions, renderProvisionScript } from "./provision";
import { assertPublicKey, type SshReleaseKey, sshBundleSource, sshChannelSetup } from "./ssh-release";

/** DigitalOcean's user-data limit. */
export const DROPLET_USER_DATA_LIMIT_BYTES = 64 * 1024;

/** What every Droplet-based construct takes. */
/** Defaults of DropletNodeHost and DropletNodeGroup: their constructors, props' JSDoc and the config schema read these. */
export const DROPLET_DEFAULTS = {
  mode: DEFAULT_VM_MODE,
  region: "nyc3",
  size: "s-1vcpu-2gb",
  clientLimits: true,
} as const;

/** DropletNodeGroup's own defaults, beside DROPLET_DEFAULTS. */
export const DROPLET_NODE_GROUP_DEFAULTS = { machines: 2 } as const;

export interface DropletMachineProps extends MachineSoftwareProps {
  readonly spec: NodeServiceSpec;
  /** The built app: pushed over SSH with `sshRelease`, else inside the user data. */
  readonly bundle: AppBundle;
  /**
   * Releases travel over SSH and roll out in place (the machine agent: canary, switch, converge), with no size
   * limit: the deploy key's public half is installed for a user that may run only the release receiver. Where
   * `cdktf deploy` runs must reach port 22 of the Droplets (its address in `sshCidrs`).
   * @default - the release travels in the user data (at most 64 KiB), and each release is a new Droplet
   */
  readonly sshRelease?: SshReleaseKey;
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
  /**
   * Nginx enforces `spec.clientLimits` per client address (429 with `Retry-After` beyond them).
   * @default true
   */
  readonly clientLimits?: boolean;
}

/**
 * A deploy key must be a public key line, and the deployer's address must be among those that may reach port 22:
 * releases are pushed over SSH.
 */
export function assertSshRelease(owner: string, sshRelease: SshReleaseKey | undefined, sshCidrs: readonly string[]): void {
  if (sshRelease === undefined) return;
  if (sshCidrs.length === 0) {
    invalidProp(
      owner,
      "sshCidrs",
      [],
      "must name the address cdktf deploy runs from when sshRelease is set (releases are pushed over SSH)",
    );
  }
  assertPublicKey(owner, sshRelease.publicKey);
}

/** Terraform reads `${` and `%{` in any string as template syntax; rendered scripts need them literal. */
export function terraformLiteral(text: string): string {
  // Function replacers: in a replacement string "$$" would itself collapse to "$".
  return text.replace(/\$\{/g, () => "$${").replace(/%\{/g, () => "%%{");
}

/** A Droplet's user data, and the refusal Terraform plans with when the release does not fit in it. */
export interface DropletUserData {
  readonly script: string;
  /**
   * The release the Droplets run: the bundle as given, or (in user data, when the bundle with its node_modules
   * does not fit) the same release without them, installed on the machine from the lock file.
   */
  readonly release: AppBundle;
  /** Plan refusals of this Droplet (a release over the user-data limit, secrets it cannot be given). */
  readonly preconditions: PlanRefusal[];
}

/**
 * A Droplet has no AWS role to read ssm: or secretsmanager: references with. env: values reach it only over the SSH
 * release channel (never in user data), and must be set in the shell that synthesizes (the one that deploys). What
 * cannot be delivered stops this stack's plan, naming the references; the other stacks go on.
 */
function dropletSecretsRefusal(scope: IConstruct, owner: string, spec: NodeServiceSpec, overSsh: boolean): PlanRefusal[] {
  const refs = Object.entries(spec.secrets);
  if (refs.length === 0) return [];
  const undeliverable = refs.filter(([, r]) => r.kind !== "env" || !overSsh);
  const { missing } = readEnvSecrets(spec.secrets, process.env);
  return [
    ...(undeliverable.length > 0
      ? [
          refuseAtPlan(
            scope,
            "SecretsOnDroplets",
            `${owner} cannot be given ${undeliverable.map(([n, r]) => `service.secrets.${n} (${describeSecretRef(r)})`).join(", ")}: a Droplet has no AWS role to read ssm:/secretsmanager: with, and env: values travel only over SSH (vm.digitalocean.deployKey), never in user data. Deploy with vm-pm2 (EC2), eks, doks or local, or give env: references with a deploy key.`,
          ),
        ]
      : []),
    ...(overSsh && missing.length > 0 ? [refuseAtPlan(scope, "SecretsMissing", missingEnvSecretsMessage(missing))] : []),
  ];
}

/**
 * The provision script, with the release inline unless it travels over SSH. A release over DigitalOcean's user-data limit is refused by a
 * precondition on the Droplets: `cdktf deploy` of that stack stops at plan, before anything changes, while the
 * other stacks of the same app (local, EC2, Kubernetes) still synthesize and deploy.
 */
export function dropletUserData(
  scope: IConstruct,
  owner: string,
  spec: NodeServiceSpec,
  plan: ProcessPlan,
  bundle: AppBundle,
  edge: Pick<ProvisionOptions, "behindLoadBalancer" | "balancerCidrs" | "clientLimits" | "machineTls" | "nodeMirror" | "keepReleases">,
  sshRelease?: SshReleaseKey,
): DropletUserData {
  const secrets = [
    ...dropletSecretsRefusal(scope, owner, spec, sshRelease !== undefined),
    // One Droplet ends TLS itself only with the SSH channel, over which a replacement takes the certificate over.
    ...(edge.behindLoadBalancer || sshRelease !== undefined ? [] : singleMachineDomainRefusal(scope, owner, spec)),
  ];
  if (sshRelease !== undefined) {
    // The release is not in the user data: a new release leaves the Droplet in place.
    const tls = edge.machineTls;
    return {
      script: renderProvisionScript(spec, plan, {
        bundleSource: sshBundleSource(),
        channelSetup: sshChannelSetup(sshRelease, tls && { domain: tls.domain, certificateScript: CERTIFICATE_SCRIPT }),
        ...edge,
      }),
      preconditions: secrets,
      release: bundle,
    };
  }
  // Without the SSH channel the domain is refused above; the script stays plain HTTP.
  const plain = {
    behindLoadBalancer: edge.behindLoadBalancer,
    ...(edge.balancerCidrs !== undefined ? { balancerCidrs: edge.balancerCidrs } : {}),
    clientLimits: edge.clientLimits,
    ...machineSoftware(edge),
  };
  const script = renderProvisionScript(spec, plan, { bundleSource: inlineBundleSource(bundle), ...plain });
  const bytes = Buffer.byteLength(script);
  if (bytes <= DROPLET_USER_DATA_LIMIT_BYTES) return { script, preconditions: secrets, release: bundle };
  // Too big with its dependencies: the sources, build output and lock file, the machine installing the locked
  // packages itself (what a buildpack does), keep the one-command default for apps with dependencies.
  const lean = withoutDependencies(bundle);
  const leanScript = renderProvisionScript(spec, plan, { bundleSource: inlineBundleSource(lean), ...plain });
  if (Buffer.byteLength(leanScript) <= DROPLET_USER_DATA_LIMIT_BYTES) return { script: leanScript, preconditions: secrets, release: lean };
  // Still too big: the same script, gzipped, behind a stub that unpacks and runs it.
  const packed = gzippedScript(leanScript);
  const packedBytes = Buffer.byteLength(packed);
  if (packedBytes <= DROPLET_USER_DATA_LIMIT_BYTES) return { script: packed, preconditions: secrets, release: lean };
  const message =
    `${owner}: the release (${bundle.data.length} bytes packed; ${lean.data.length} without node_modules) makes the user data ${packedBytes} bytes, over DigitalOcean's limit of ` +
    `${DROPLET_USER_DATA_LIMIT_BYTES} bytes, and Droplets receive their release in user data. Nothing was changed. ` +
    "Push releases over SSH instead (DropletNodeHost/DropletNodeGroup sshRelease; config vm.digitalocean.deployKey), " +
    "deploy with vm-pm2 (EC2: releases travel through S3), eks or doks, or make the release smaller.";
  // The refused release stays out of the synthesized JSON: the fetch step it would need is a clear failure instead.
  const refused = [
    `BUNDLE_SHA256="${bundle.sha256}"`,
    "fetch_bundle() {",
    '  echo "release too large for user data" >&2',
    "  return 1",
    "}",
  ].join("\n");
  return {
    script: renderProvisionScript(spec, plan, { bundleSource: refused, ...plain }),
    preconditions: [...secrets, refuseAtPlan(scope, "UserDataBytes", message, packedBytes, DROPLET_USER_DATA_LIMIT_BYTES)],
    release: lean,
  };
}

/**
 * A provision script as a shell stub that unpacks it (gzip, base64) and runs it: cloud-init still receives a shell
 * script, in a third of the bytes or less. Pure.
 */
export function gzippedScript(script: string): string {
  const lines =
    gzipSync(Buffer.from(script), { level: 9 })
      .toString("base64")
      .match(/.{1,76}/g) ?? [];
  const dest = "/run/nodescale-provision.sh";
  return [
    "#!/usr/bin/env bash",
    "# Rendered by NodeScale: the provision script, gzipped to fit DigitalOcean's 64 KiB of user data.",
    "set -euo pipefail",
    `base64 -d <<'NODESCALE_GZIP' | gunzip > ${dest}.tmp`,
    ...lines,
    "NODESCALE_GZIP",
    `chmod 0700 ${dest}.tmp`,
    `mv -f ${dest}.tmp ${dest}`,
    `exec bash ${dest}`,
    "",
  ].join("\n");
}

/** The user data with `NODESCALE_HOST_PROOF` set on its second line (after the shebang), from Terraform. */
function withHostProof(script: string, proof: string | undefined): string {
  if (proof === undefined) return script;
  const newline = script.indexOf("\n");
  return `${script.slice(0, newline)}\nNODESCALE_HOST_PROOF='${proof}'\n${script.slice(newline + 1)}`;
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
  readonly userData: DropletUserData;
  /**
   * The host proof key (hostProofKey().sensitive), set as NODESCALE_HOST_PROOF at the top of the user data.
   * @default - none
   */
  readonly hostProof?: string;
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
    userData: withHostProof(terraformLiteral(options.userData.script), options.hostProof),
    gracefulShutdown: true,
    lifecycle: {
      createBeforeDestroy: true,
      ...(options.userData.preconditions.length > 0 ? { precondition: options.userData.preconditions } : {}),
    },
  };
}

/** Outbound from the Droplets: OS packages, the Node.js download, DigitalOcean's metadata and monitoring. */
export const DROPLET_EGRESS: FirewallOutboundRule[] = [
  { protocol: "tcp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
  { protocol: "udp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
  { protocol: "icmp", destinationAddresses: ["0.0.0.0/0", "::/0"] },
];
