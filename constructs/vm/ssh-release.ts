import { Construct, DataResource, Fn, type ITerraformDependable, TerraformAsset, Token } from "../cdk";
import { type AppBundle, bundleFile } from "../release/bundle";
import { invalidProp } from "../service/errors";
import { SSH_PUBLIC_KEY, SSH_PUBLIC_KEY_RULE } from "../service/rules";
import type { SecretRef } from "../service/secrets";
import { renderTemplate, safeToken, templatePath } from "../template";
import { CERTIFICATE_TAKEOVER_MIN_SECONDS, MACHINE_TLS } from "./acme";
import { VM_BASE } from "./provision";
import { VM_SECRETS_FILE } from "./secrets-fetch";

/** The account a deploy key logs in as: it may run one command, the release receiver, and nothing else. */
export const DEPLOY_USER = "nodescale-deploy";
/** The receiver on the machine (root-owned; the deploy user reaches it through one sudoers rule). */
export const RECEIVE_RELEASE = `${VM_BASE}/bin/receive-release`;
/** The largest release a machine accepts over SSH. */
export const MAX_SSH_RELEASE_BYTES = 512 * 1024 * 1024;
/** Where a machine keeps its host proof key (root 0600), with which its receiver answers the push's challenge. */
export const HOST_PROOF_FILE = "/etc/nodescale/host-proof";
/** How long the receiver waits for a new machine to finish provisioning before it takes a release. */
const PROVISION_WAIT_SECONDS = 900;
/** The deployer-side script Terraform runs to push a release. */
export const PUSH_RELEASE_SCRIPT = templatePath("vm/push-release.sh");

/** A key pair whose public half may push releases to a machine over SSH. */
export interface SshReleaseKey {
  /** The OpenSSH public key (`ssh-ed25519 AAAA... comment`): written to the machine, in user data (it is public). */
  readonly publicKey: string;
  /** Path of the private key on the machine that runs `cdktf deploy` (`~` allowed). Never leaves that machine. */
  readonly privateKeyFile: string;
}

/** Refuses a value that is not one OpenSSH public key line (a private key pasted by mistake, a wrapped line). */
export function assertPublicKey(owner: string, key: string): void {
  if (!SSH_PUBLIC_KEY.test(key.trim())) {
    const shown = key.includes("PRIVATE KEY") ? "(a private key)" : key.slice(0, 40);
    invalidProp(owner, "sshRelease.publicKey", shown, SSH_PUBLIC_KEY_RULE);
  }
}

/** The deploy user's authorized_keys line: no shell, no forwarding, no pty; the one command only. Pure. */
export function renderDeployAuthorizedKey(publicKey: string, command = `sudo -n ${RECEIVE_RELEASE}`): string {
  return `restrict,command="${command}" ${publicKey.trim()}`;
}

/** The sudoers rule: the deploy user may run the receiver as root, with no arguments, keeping SSH's request. Pure. */
export function renderDeploySudoers(): string {
  return [
    `# NodeScale: ${DEPLOY_USER} may run the release receiver, nothing else.`,
    `Defaults!${RECEIVE_RELEASE} env_keep += "SSH_ORIGINAL_COMMAND"`,
    `${DEPLOY_USER} ALL=(root) NOPASSWD: ${RECEIVE_RELEASE} ""`,
    "",
  ].join("\n");
}

/** The release receiver, the deploy key's forced command. Pure. */
/** The largest secrets document the receiver takes. */
export const MAX_SSH_SECRETS_BYTES = 64 * 1024;

/** A machine that ends TLS for its domain: where the receiver finds and puts certificates. */
export interface ReceiverTls {
  readonly domain: string;
  /** @default MACHINE_TLS.link */
  readonly link?: string;
  /** @default MACHINE_TLS.imported */
  readonly imported?: string;
  /** The certificate script (`certificate.sh imported` serves a certificate taken over). */
  readonly certificateScript: string;
  /**
   * CA bundle a certificate taken over must chain to.
   * @default - the system's CAs
   */
  readonly trustedCa?: string;
}

/**
 * The receiver the deploy key's forced command runs. Pure.
 * @param base the machine's NodeScale folder; @param secretsFile where received secrets go; @param node Node.js;
 * @param tls with a domain the machine ends TLS for: certificates can be taken over from the machine it replaces
 * @param hostProofFile the key the machine proves itself with (from its user data)
 */
export function renderReceiveRelease(
  base = VM_BASE,
  secretsFile = VM_SECRETS_FILE,
  node = "/usr/local/bin/node",
  tls?: ReceiverTls,
  hostProofFile = HOST_PROOF_FILE,
): string {
  return renderTemplate("vm/receive-release.sh", {
    hostProofFile: safeToken("hostProofFile", hostProofFile),
    base,
    maxBytes: MAX_SSH_RELEASE_BYTES,
    provisionWaitSeconds: PROVISION_WAIT_SECONDS,
    secretsFile: safeToken("secretsFile", secretsFile),
    maxSecretsBytes: MAX_SSH_SECRETS_BYTES,
    node: safeToken("node", node),
    tlsDomain: tls === undefined ? "" : safeToken("domain", tls.domain),
    tlsLink: safeToken("link", tls?.link ?? MACHINE_TLS.link),
    tlsImported: safeToken("imported", tls?.imported ?? MACHINE_TLS.imported),
    certificateScript: tls === undefined ? "" : safeToken("certificateScript", tls.certificateScript),
    trustedCa: tls?.trustedCa === undefined ? "" : safeToken("trustedCa", tls.trustedCa),
    takeoverMinSeconds: CERTIFICATE_TAKEOVER_MIN_SECONDS,
  });
}

/**
 * A random key (two UUIDs: 244 random bits, made by Terraform's uuid() once and kept in state) that the Droplets of
 * one stack receive in their user data (a channel the DigitalOcean API authenticates) and the push holds: before
 * anything is sent, the machine proves it holds the key (HMAC-SHA256 of a fresh challenge), which pins its SSH host
 * key for the rest of the push. A machine in the path at a first deploy has no key, so it gets nothing.
 */
export function hostProofKey(scope: Construct, id = "HostProof"): { sensitive: string; forPush: string } {
  const key = new DataResource(scope, id, {
    input: Fn.sensitive(Fn.join("", [Fn.uuid(), Fn.uuid()])),
    lifecycle: { ignoreChanges: ["input"] },
  });
  const value = Token.asString(key.output);
  return { sensitive: value, forPush: Fn.nonsensitive(value) };
}

/** Provision-script steps that open the SSH channel: the deploy user, its one key, its one command. Pure. */
export function sshChannelSetup(key: SshReleaseKey, tls?: ReceiverTls): string {
  return [
    'log "release channel: SSH, deploy user with one command"',
    // The host proof key from the user data (NODESCALE_HOST_PROOF, set above the script by the Droplet's user data).
    'if [ -n "${NODESCALE_HOST_PROOF:-}" ]; then',
    `  (umask 077 && printf '%s' "\${NODESCALE_HOST_PROOF}" > ${HOST_PROOF_FILE}.tmp)`,
    `  mv -f ${HOST_PROOF_FILE}.tmp ${HOST_PROOF_FILE}`,
    "fi",
    `id -u ${DEPLOY_USER} >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/${DEPLOY_USER} --shell /bin/bash ${DEPLOY_USER}`,
    `install -d -o ${DEPLOY_USER} -g ${DEPLOY_USER} -m 0700 /var/lib/${DEPLOY_USER}/.ssh`,
    `cat > /var/lib/${DEPLOY_USER}/.ssh/authorized_keys <<'NODESCALE_KEY'`,
    renderDeployAuthorizedKey(key.publicKey),
    "NODESCALE_KEY",
    `chown ${DEPLOY_USER}:${DEPLOY_USER} /var/lib/${DEPLOY_USER}/.ssh/authorized_keys`,
    `chmod 0600 /var/lib/${DEPLOY_USER}/.ssh/authorized_keys`,
    `cat > "${RECEIVE_RELEASE}.tmp" <<'NODESCALE_RECEIVE'`,
    renderReceiveRelease(VM_BASE, VM_SECRETS_FILE, "/usr/local/bin/node", tls),
    "NODESCALE_RECEIVE",
    `chmod 0755 "${RECEIVE_RELEASE}.tmp" && mv -f "${RECEIVE_RELEASE}.tmp" "${RECEIVE_RELEASE}"`,
    `cat > /etc/sudoers.d/${DEPLOY_USER}.tmp <<'NODESCALE_SUDOERS'`,
    renderDeploySudoers().trimEnd(),
    "NODESCALE_SUDOERS",
    `chmod 0440 /etc/sudoers.d/${DEPLOY_USER}.tmp`,
    `visudo -cqf /etc/sudoers.d/${DEPLOY_USER}.tmp && mv -f /etc/sudoers.d/${DEPLOY_USER}.tmp /etc/sudoers.d/${DEPLOY_USER}`,
  ].join("\n");
}

/** The provision script's release source for the SSH channel: the receiver stores the release before it runs. */
export function sshBundleSource(): string {
  return [
    // At boot there is no release yet (the script provisions and stops); the receiver names the one it stored.
    'BUNDLE_SHA256="${NODESCALE_BUNDLE_SHA256:-}"',
    "fetch_bundle() {",
    '  echo "the release arrives over SSH (receive-release), not from here" >&2',
    "  return 1",
    "}",
  ].join("\n");
}

export interface SshReleaseProps {
  /** The machine's own address (reachable over SSH from where `cdktf deploy` runs). */
  readonly host: string;
  /** Its id: a new machine gets its own known-hosts file (trust on first use, per machine) and a push. */
  readonly machineId: string;
  /** The release to push. */
  readonly bundle: AppBundle;
  /** The deploy key. */
  readonly key: SshReleaseKey;
  /** What must exist first (the machine). */
  readonly dependsOn?: ITerraformDependable[];
  /**
   * The service's secrets: `env:` references are read from the deploying shell and sent over the same SSH channel
   * (to a root-only file) before each release; with any, every deploy pushes, so a changed value reloads the processes.
   * @default {}
   */
  readonly secrets?: Readonly<Record<string, SecretRef>>;
  /**
   * The address of the machine this one replaces (the stable address, before it moves): after the release, the
   * certificate it serves for the domain is taken over (old machine -> this shell's pipe -> new machine, which
   * verifies it), so the new machine serves a trusted certificate from the moment the address moves to it.
   * @default - no certificate taken over
   */
  readonly certificateFrom?: string;
  /**
   * The host proof key the machine received in its user data (hostProofKey().forPush): the push sends nothing until
   * the machine proves it holds it, and pins its host key from then on.
   * @default - trust on first use: the first host key seen is pinned
   */
  readonly hostProof?: string;
}

/**
 * Pushes a release to one machine over SSH (terraform_data + local-exec): when the release changes or the machine
 * is new. The machine's receiver verifies it and rolls it out in place with the machine agent (canary, switch,
 * converge), so a failed push leaves the machine on its previous release and fails the deploy.
 */
export class SshRelease extends Construct {
  /** The push; depend on it to run after the machine serves the release. */
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: SshReleaseProps) {
    super(scope, id);
    const dependsOn = props.dependsOn ?? [];
    const fromShell = Object.entries(props.secrets ?? {}).flatMap(([name, ref]) => (ref.kind === "env" ? [`${name}=${ref.variable}`] : []));
    // Terraform runs local-exec in the stack's folder, where the asset is copied.
    const asset = new TerraformAsset(this, "Bundle", { path: bundleFile(this, props.bundle) });
    this.resource = new DataResource(this, "Push", {
      triggersReplace: {
        machine: props.machineId,
        release: props.bundle.sha256,
        // Secrets change outside the configuration: push them (and roll) on every deploy.
        ...(fromShell.length > 0 ? { secrets: Fn.timestamp() } : {}),
      },
      dependsOn,
      // Checked at plan, on the machine that deploys: without the key nothing is created.
      lifecycle: {
        precondition: [
          {
            condition: Fn.fileexists(Fn.pathexpand(props.key.privateKeyFile)),
            errorMessage: `The deploy key ${props.key.privateKeyFile} (sshRelease.privateKeyFile) is not on this machine: releases are pushed over SSH with it. Nothing was changed.`,
          },
        ],
      },
      provisioners: [
        {
          type: "local-exec",
          environment: {
            NODESCALE_PUSH: PUSH_RELEASE_SCRIPT,
            NODESCALE_HOST: props.host,
            NODESCALE_KEY_FILE: props.key.privateKeyFile,
            NODESCALE_SHA256: props.bundle.sha256,
            NODESCALE_BUNDLE: asset.path,
            NODESCALE_MACHINE_ID: props.machineId,
            // Names only: the values stay in the shell that deploys until the push reads them.
            ...(fromShell.length > 0 ? { NODESCALE_SECRETS: fromShell.join(" ") } : {}),
            ...(props.certificateFrom !== undefined ? { NODESCALE_TLS_FROM: props.certificateFrom } : {}),
            ...(props.hostProof !== undefined ? { NODESCALE_HOST_PROOF: props.hostProof } : {}),
          },
          command: 'bash "$NODESCALE_PUSH"',
        },
      ],
    });
  }
}
