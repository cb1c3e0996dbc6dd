import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { VM_BASE } from "../../constructs/vm/provision";
import { VM_SECRETS_FILE } from "../../constructs/vm/secrets-fetch";
import {
  DEPLOY_USER,
  HOST_PROOF_FILE,
  MAX_SSH_RELEASE_BYTES,
  PUSH_RELEASE_SCRIPT,
  RECEIVE_RELEASE,
  renderDeploySudoers,
  renderReceiveRelease,
  sshChannelSetup,
} from "../../constructs/vm/ssh-release";
import { fixtureBundle, tempDir } from "../helpers/fixtures";
import { listening } from "../helpers/local-deploy";
import { freePort, sleep, waitFor } from "../helpers/processes";
import { keygen } from "../helpers/sshd";
import { shellcheck } from "../helpers/tools";

// The SSH release channel for real, as on a Droplet: the provision script's own SSH steps (sshChannelSetup) create
// the nodescale-deploy user, its authorized_keys line (forced command), the receiver and the sudoers rule; real sshd
// (with PAM, as Ubuntu runs it) on 127.0.0.1 lets that user in; the forced command runs `sudo -n` through the
// rendered rule; the deployer-side push script Terraform runs sends the release. Only the provision step after the
// receiver is a recorder here (on a Droplet it is the provision script, tested on its own).
//
// The machine's global configuration is never touched: sshd runs in a mount namespace of its own in which /etc,
// /opt, /usr/local and /var/lib are overlays whose changes land in this test's temp folder (the user, the sudoers
// file, the receiver, the deploy user's home). The namespace and its overlays end with the test's sshd processes.

const bundle = fixtureBundle();
const dir = tempDir("nodescale-ssh-");
const clientKey = join(dir, "deploy_key");
const bundleFile = join(dir, "release.tar.gz");
const record = join(dir, "provisioned-release");
const exitCode = join(dir, "exit-code");
const OVERLAID = ["/etc", "/opt", "/usr/local", "/var/lib"];
const SUDOERS = `/etc/sudoers.d/${DEPLOY_USER}`;
const daemons: ChildProcess[] = [];
/** The first sshd: its mount namespace is the machine. */
let machinePid = 0;

/** A path on the machine (inside the namespace), readable and writable from here through the sshd's root. */
const onMachine = (path: string) => join("/proc", String(machinePid), "root", path);
const base = () => onMachine(VM_BASE);
const secretsFile = () => onMachine(VM_SECRETS_FILE);

/** Runs a shell command as root on the machine (inside its mount namespace). */
function onMachineAsRoot(script: string, input = "") {
  return spawnSync("nsenter", ["-t", String(machinePid), "-m", "--", "bash", "-c", script], { encoding: "utf8", input });
}

/** sshd's configuration: the defaults of Ubuntu's (PAM, StrictModes, ~/.ssh/authorized_keys), root kept out. */
function sshdConfig(port: number, hostKey = join(dir, "host_key")): string {
  const config = join(dir, `sshd-${port}.conf`);
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, `sshd-${port}.pid`)}`,
      "UsePAM yes",
      "PermitRootLogin no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "",
    ].join("\n"),
  );
  return config;
}

/** The machine: a mount namespace with the overlays, provisioned by the provision script's SSH steps, and its sshd. */
function startMachine(port: number): ChildProcess {
  const publicKey = readFileSync(`${clientKey}.pub`, "utf8").trim();
  const overlays = OVERLAID.map((path, i) => {
    const upper = join(dir, "overlay", String(i));
    return `mkdir -p ${upper}/up ${upper}/work && mount -t overlay overlay -o lowerdir=${path},upperdir=${upper}/up,workdir=${upper}/work ${path}`;
  });
  const provision = [
    "set -euo pipefail",
    ...overlays,
    // Node.js where the provision script installs it.
    `ln -sfn ${process.execPath} /usr/local/bin/node`,
    `install -d -m 0755 ${VM_BASE}/bin`,
    'log() { echo "provision: $*"; }',
    sshChannelSetup({ publicKey, privateKeyFile: clientKey }),
    // The recorder standing in for the provision script the receiver hands the release to.
    `printf '%s\n' '#!/usr/bin/env bash' 'echo "$NODESCALE_BUNDLE_SHA256" > ${record}' 'exit "$(cat ${exitCode} 2>/dev/null || echo 0)"' > ${VM_BASE}/bin/provision.sh`,
    `chmod 0755 ${VM_BASE}/bin/provision.sh`,
    `touch ${VM_BASE}/provisioned`,
    `exec /usr/sbin/sshd -D -e -f ${sshdConfig(port)}`,
  ].join("\n");
  mkdirSync("/run/sshd", { recursive: true });
  const sshd = spawn("unshare", ["--mount", "--propagation", "private", "--", "bash", "-c", provision], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  daemons.push(sshd);
  return sshd;
}

/** Another sshd on the same machine (same namespace): the machine's sshd coming up late, or another host key. */
function startAnotherSshd(port: number, hostKey?: string): ChildProcess {
  const sshd = spawn("nsenter", ["-t", String(machinePid), "-m", "--", "/usr/sbin/sshd", "-D", "-e", "-f", sshdConfig(port, hostKey)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  daemons.push(sshd);
  return sshd;
}

function push(port: number, sha256 = bundle.sha256, extra: Record<string, string> = {}) {
  return new Promise<{ status: number | null; output: string }>((resolve) => {
    const child = spawn("bash", [PUSH_RELEASE_SCRIPT], {
      env: {
        ...process.env,
        NODESCALE_HOST: "127.0.0.1",
        NODESCALE_SSH_PORT: String(port),
        NODESCALE_KEY_FILE: clientKey,
        NODESCALE_SHA256: sha256,
        NODESCALE_BUNDLE: bundleFile,
        NODESCALE_MACHINE_ID: `test-${port}`,
        NODESCALE_KNOWN_HOSTS_DIR: join(dir, "known_hosts"),
        NODESCALE_CONNECT_WAIT_SECONDS: "30",
        ...extra,
      },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (status) => resolve({ status, output }));
  });
}

/** One ssh command with the deploy key, as a client that bypasses the push script would send it. */
function sshAsDeployKey(command: string, input: string, user = DEPLOY_USER) {
  const options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"];
  return spawnSync("ssh", ["-i", clientKey, "-p", String(port), ...options, `${user}@127.0.0.1`, command], { encoding: "utf8", input });
}

let port = 0;
beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("this test provisions a machine in a mount namespace of its own: run it as root");
  for (const tool of ["/usr/sbin/sshd", "/usr/bin/sudo", "/usr/sbin/visudo"]) {
    if (!existsSync(tool)) throw new Error(`${tool} is needed for this test (apt-get install -y openssh-server sudo)`);
  }
  keygen(clientKey);
  keygen(join(dir, "host_key"));
  writeFileSync(bundleFile, bundle.data);
  port = await freePort();
  const sshd = startMachine(port);
  let errors = "";
  sshd.stderr?.on("data", (d) => (errors += d));
  await waitFor(`the machine's sshd (${errors})`, async () => ((await listening("127.0.0.1", port)) ? true : undefined), 20_000);
  machinePid = sshd.pid ?? 0;
}, 30_000);

afterAll(async () => {
  for (const sshd of daemons) sshd.kill("SIGTERM");
  await sleep(300);
});

beforeEach(() => {
  rmSync(record, { force: true });
  rmSync(exitCode, { force: true });
  rmSync(join(base(), "bundles"), { recursive: true, force: true });
});

describe("the machine as the provision script leaves it", () => {
  it("has a system user for deploys, its one key forced to run the receiver through sudo, and a root-owned receiver", () => {
    const user = onMachineAsRoot(`getent passwd ${DEPLOY_USER}`).stdout.trim().split(":");
    expect(user[0]).toBe(DEPLOY_USER);
    expect(Number(user[2])).toBeLessThan(1000);
    expect(user[5]).toBe(`/var/lib/${DEPLOY_USER}`);
    const keys = readFileSync(onMachine(`/var/lib/${DEPLOY_USER}/.ssh/authorized_keys`), "utf8");
    expect(keys).toBe(`restrict,command="sudo -n ${RECEIVE_RELEASE}" ${readFileSync(`${clientKey}.pub`, "utf8").trim()}\n`);
    expect(readFileSync(onMachine(SUDOERS), "utf8")).toBe(renderDeploySudoers());
    expect(statSync(onMachine(SUDOERS)).mode & 0o777).toBe(0o440);
    const receiver = statSync(onMachine(RECEIVE_RELEASE));
    expect([receiver.uid, receiver.mode & 0o777]).toEqual([0, 0o755]);
    // Nothing of it reached this machine's own configuration.
    expect(spawnSync("getent", ["passwd", DEPLOY_USER]).status).toBe(2);
    expect(existsSync(SUDOERS)).toBe(false);
  });

  it("lets the deploy user run the receiver as root with no arguments, and nothing else through sudo", () => {
    const asDeployUser = (command: string) => onMachineAsRoot(`runuser -u ${DEPLOY_USER} -- ${command}`);
    for (const command of [
      "sudo -n /bin/cat /etc/shadow",
      "sudo -n /bin/sh -c id",
      `sudo -n ${RECEIVE_RELEASE} release-anything`,
      `sudo -n -u nobody ${RECEIVE_RELEASE}`,
      `sudo -n -E ${RECEIVE_RELEASE}`,
      `sudo -n -e ${RECEIVE_RELEASE}`,
    ]) {
      const refused = asDeployUser(command);
      expect({ command, status: refused.status }).toEqual({ command, status: 1 });
      expect(refused.stderr).toMatch(/sudo: (a password is required|sorry, you are not allowed)/);
    }
    expect(asDeployUser("sudo -n -l").stdout).toContain(`(root) NOPASSWD: ${RECEIVE_RELEASE} ""`);
    // The one allowed call reaches the receiver as root (which refuses an empty request).
    const ran = asDeployUser(`sudo -n ${RECEIVE_RELEASE}`);
    expect(ran.status).toBe(2);
    expect(ran.stderr).toContain(
      'nodescale-receive: expected "release <sha256>", "secrets", "tls-export", "tls-import" or "prove <challenge>", got ""',
    );
  });
});

describe("release over SSH", () => {
  it("delivers the release, verified, to the machine's provision step, which rolls it out", async () => {
    const result = await push(port);
    expect(result.status).toBe(0);
    expect(result.output).toContain(`nodescale-push: 127.0.0.1 serves release ${bundle.sha256.slice(0, 12)}`);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
    expect(readFileSync(join(base(), "bundles", `${bundle.sha256}.tar.gz`)).equals(bundle.data)).toBe(true);
  });

  it("refuses bytes whose SHA-256 is not the one asked for, and keeps nothing", async () => {
    const wrong = "0".repeat(64);
    const result = await push(port, wrong);
    expect(result.status).toBe(1);
    expect(result.output).toContain(
      `nodescale-receive: the release arrived with SHA-256 ${bundle.sha256}, expected ${wrong}; refused (nothing changed)`,
    );
    expect(existsSync(record)).toBe(false);
    expect(existsSync(join(base(), "bundles", `${wrong}.tar.gz`))).toBe(false);
    expect(existsSync(join(base(), "bundles", `${wrong}.tar.gz.partial`))).toBe(false);
  });

  it("refuses a release larger than the cap, keeping nothing", async () => {
    // Sparse: MAX_SSH_RELEASE_BYTES + 1 bytes of zeros that take no disk here; the machine stores the cap, then stops.
    const big = join(dir, "too-big.tar.gz");
    writeFileSync(big, "");
    truncateSync(big, MAX_SSH_RELEASE_BYTES + 1);
    try {
      const sha = "1".repeat(64);
      const result = await push(port, sha, { NODESCALE_BUNDLE: big });
      expect(result.output).toContain(`nodescale-receive: the release is larger than ${MAX_SSH_RELEASE_BYTES} bytes; refused`);
      expect(result.status).toBe(1);
      expect(readdirSync(join(base(), "bundles"))).toEqual([]);
      expect(existsSync(record)).toBe(false);
    } finally {
      rmSync(big, { force: true });
    }
  }, 120_000);

  it("fails the deploy with the machine's own verdict when the rollout is refused there", async () => {
    writeFileSync(exitCode, "3");
    const result = await push(port);
    expect(result.status).toBe(3);
    expect(result.output).toContain(`nodescale-push: 127.0.0.1 refused release ${bundle.sha256.slice(0, 12)} (exit 3)`);
  });

  it("keeps at most the current release's bundle and the newest one however many pushes fail", async () => {
    mkdirSync(join(base(), "bundles"), { recursive: true });
    const current = "c".repeat(64);
    rmSync(join(base(), "current"), { force: true });
    symlinkSync(join("releases", current), join(base(), "current"));
    // Three earlier pushes the machine refused (512 MiB each at most), and the current release's bundle.
    for (const sha of [current, "1".repeat(64), "2".repeat(64), "3".repeat(64)])
      writeFileSync(join(base(), "bundles", `${sha}.tar.gz`), "x");
    try {
      writeFileSync(exitCode, "3");
      expect((await push(port)).status).toBe(3);
      expect(readdirSync(join(base(), "bundles")).sort()).toEqual([`${bundle.sha256}.tar.gz`, `${current}.tar.gz`].sort());
    } finally {
      rmSync(join(base(), "current"), { force: true });
    }
  });

  it("sends nothing until the machine proves it holds the host proof key from its user data, then pins its host key", async () => {
    const key = "5b0e8f3a-7c1d-4e2b-9a6f-0d4c3b2a1e9f8d7c6b5a-4f3e-4d2c-8b1a-0f9e8d7c6b5a";
    const proofFile = onMachine(HOST_PROOF_FILE);
    mkdirSync(dirname(proofFile), { recursive: true });
    writeFileSync(proofFile, key, { mode: 0o600 });
    rmSync(secretsFile(), { force: true });
    try {
      const result = await push(port, bundle.sha256, {
        NODESCALE_HOST_PROOF: key,
        NODESCALE_MACHINE_ID: "proven",
        NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_PROOF_TOKEN",
        NODESCALE_TEST_PROOF_TOKEN: "proof-secret-1",
      });
      expect([result.status, result.output]).toEqual([0, expect.stringContaining("proves it is the machine Terraform created")]);
      expect(JSON.parse(readFileSync(secretsFile(), "utf8"))).toEqual({ API_TOKEN: "proof-secret-1" });
      expect(readFileSync(join(dir, "known_hosts", "proven"), "utf8")).toMatch(/ssh-ed25519 /);
    } finally {
      rmSync(proofFile, { force: true });
    }
  });

  it.each([
    ["holds another key (an impostor in the path)", "another-key"],
    ["holds no key at all", undefined],
  ])("sends neither secrets nor release to a machine that %s, and forgets its host key", async (_, machineKey) => {
    const proofFile = onMachine(HOST_PROOF_FILE);
    mkdirSync(dirname(proofFile), { recursive: true });
    if (machineKey !== undefined) writeFileSync(proofFile, machineKey, { mode: 0o600 });
    rmSync(secretsFile(), { force: true });
    try {
      const result = await push(port, bundle.sha256, {
        NODESCALE_HOST_PROOF: "the-key-terraform-made",
        NODESCALE_MACHINE_ID: "impostor",
        NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_PROOF_TOKEN",
        NODESCALE_TEST_PROOF_TOKEN: "proof-secret-2",
      });
      expect(result.status).toBe(1);
      expect(result.output).toContain(
        "nodescale-push: 127.0.0.1 did not prove it holds this deploy's host proof key: it may not be the machine Terraform created (someone in the path?); nothing was sent, its host key is forgotten",
      );
      expect(result.output).not.toContain("proof-secret-2");
      expect([existsSync(secretsFile()), existsSync(record), existsSync(join(dir, "known_hosts", "impostor"))]).toEqual([
        false,
        false,
        false,
      ]);
    } finally {
      rmSync(proofFile, { force: true });
    }
  });

  it("refuses secrets larger than 64 KiB, keeping the ones it has", () => {
    writeFileSync(secretsFile(), '{"KEPT":"1"}', { mode: 0o600 });
    const run = sshAsDeployKey("secrets", JSON.stringify({ BIG: "x".repeat(64 * 1024) }));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("nodescale-receive: secrets are larger than 65536 bytes; refused (nothing changed)");
    expect(readFileSync(secretsFile(), "utf8")).toBe('{"KEPT":"1"}');
  });

  it("lets the deploy key run nothing but the receiver, and only as the deploy user", () => {
    const run = sshAsDeployKey("cat /etc/shadow", "");
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'nodescale-receive: expected "release <sha256>", "secrets", "tls-export", "tls-import" or "prove <challenge>", got "cat /etc/shadow"',
    );
    const asRoot = sshAsDeployKey("true", "", "root");
    expect(asRoot.status).toBe(255);
    expect(asRoot.stderr).toContain("Permission denied (publickey)");
  });

  it("fails the push, changing nothing, without the sudoers rule: the deploy user alone cannot take a release", async () => {
    const rule = readFileSync(onMachine(SUDOERS), "utf8");
    rmSync(onMachine(SUDOERS));
    try {
      const result = await push(port);
      expect(result.output).toContain("sudo: a password is required");
      expect(result.output).toContain(
        `nodescale-push: 127.0.0.1 refused release ${bundle.sha256.slice(0, 12)} (exit 1); it keeps serving its previous release`,
      );
      expect(result.status).toBe(1);
      expect(existsSync(record)).toBe(false);
      expect(existsSync(join(base(), "bundles"))).toBe(false);
    } finally {
      writeFileSync(onMachine(SUDOERS), rule, { mode: 0o440 });
    }
    expect((await push(port)).status).toBe(0);
  });

  it("sends the secrets from the deploying shell to a root-only file before the release, printing no value", async () => {
    rmSync(secretsFile(), { force: true });
    const value = "over-ssh-secret-6a2f";
    const result = await push(port, bundle.sha256, {
      NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_SSH_TOKEN",
      NODESCALE_TEST_SSH_TOKEN: value,
    });
    expect(result.status).toBe(0);
    expect(result.output).toContain("nodescale-receive: 1 secret(s) received");
    expect(result.output).not.toContain(value);
    expect(JSON.parse(readFileSync(secretsFile(), "utf8"))).toEqual({ API_TOKEN: value });
    expect(statSync(secretsFile()).mode & 0o777).toBe(0o600);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
  });

  it("stops before sending anything when the shell lacks a secret's variable, naming it", async () => {
    const result = await push(port, bundle.sha256, { NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_UNSET_TOKEN" });
    expect(result.status).toBe(1);
    expect(result.output).toContain(
      "nodescale-push: not set in the shell that deploys: service.secrets.API_TOKEN (env:NODESCALE_TEST_UNSET_TOKEN)",
    );
    expect(existsSync(record)).toBe(false);
  });

  it("refuses secrets that are not a JSON object of strings, keeping the ones it has", () => {
    writeFileSync(secretsFile(), '{"KEEP":"x"}', { mode: 0o600 });
    const run = sshAsDeployKey("secrets", '{"A": 1}');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("nodescale-receive: secrets must be a JSON object of names to strings; refused (nothing changed)");
    expect(readFileSync(secretsFile(), "utf8")).toBe('{"KEEP":"x"}');
  });

  it("waits for a machine that is still booting (sshd not up yet), then delivers", async () => {
    const later = await freePort();
    const pushing = push(later);
    await sleep(3000);
    startAnotherSshd(later);
    const result = await pushing;
    expect(result.status).toBe(0);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
  });

  it("trusts a machine's host key on first use: a changed key at the same machine fails, a new machine is trusted", async () => {
    const moved = await freePort();
    const first = startAnotherSshd(moved);
    await waitFor("the sshd", async () => ((await listening("127.0.0.1", moved)) ? true : undefined));
    expect((await push(moved, bundle.sha256, { NODESCALE_MACHINE_ID: "droplet-1" })).status).toBe(0);
    first.kill("SIGTERM");
    await waitFor("the sshd to stop", async () => ((await listening("127.0.0.1", moved)) ? undefined : true));
    // Another machine (another host key) at the same address and port.
    keygen(join(dir, "other_host_key"));
    startAnotherSshd(moved, join(dir, "other_host_key"));
    await waitFor("the other sshd", async () => ((await listening("127.0.0.1", moved)) ? true : undefined));
    rmSync(record, { force: true });
    const refused = await push(moved, bundle.sha256, { NODESCALE_MACHINE_ID: "droplet-1", NODESCALE_CONNECT_WAIT_SECONDS: "1" });
    expect(refused.output).toContain("Host key verification failed.");
    expect(refused.status).toBe(1);
    expect(existsSync(record)).toBe(false);
    // A replacement Droplet has its own id, so its own known-hosts file.
    expect((await push(moved, bundle.sha256, { NODESCALE_MACHINE_ID: "droplet-2" })).status).toBe(0);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
  });

  it("waits for a new machine to finish provisioning before it takes the release", async () => {
    rmSync(join(base(), "provisioned"));
    const pushing = push(port);
    await sleep(2000);
    expect(existsSync(record)).toBe(false);
    writeFileSync(join(base(), "provisioned"), "");
    const result = await pushing;
    expect(result.status).toBe(0);
    await waitFor("the release to be rolled out", () => (existsSync(record) ? true : undefined));
  });
});

describe("SSH channel templates", () => {
  it("render clean shell and a sudoers rule visudo accepts", () => {
    expect(shellcheck(renderReceiveRelease())).toBe("");
    expect(shellcheck(readFileSync(PUSH_RELEASE_SCRIPT, "utf8"))).toBe("");
    const publicKey = readFileSync(`${clientKey}.pub`, "utf8").trim();
    expect(shellcheck(`#!/usr/bin/env bash\nlog() { :; }\n${sshChannelSetup({ publicKey, privateKeyFile: "k" })}\n`)).toBe("");
    const sudoers = join(dir, "sudoers");
    writeFileSync(sudoers, renderDeploySudoers(), { mode: 0o440 });
    const check = spawnSync("visudo", ["-cf", sudoers], { encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toContain("parsed OK");
    expect(check.status).toBe(0);
  });
});
