import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  PUSH_RELEASE_SCRIPT,
  renderDeployAuthorizedKey,
  renderDeploySudoers,
  renderReceiveRelease,
  sshChannelSetup,
} from "../../constructs/vm/ssh-release";
import { fixtureBundle, tempDir } from "../helpers/fixtures";
import { freePort, sleep, waitFor } from "../helpers/processes";
import { keygen, startSshd } from "../helpers/sshd";
import { shellcheck } from "../helpers/tools";

// The SSH release channel for real: sshd on 127.0.0.1 with the rendered authorized_keys line (forced command), the
// rendered receiver, and the deployer-side push script Terraform runs. Only the provision step after the receiver
// is a recorder here (on a Droplet it is the provision script, tested on its own).

const bundle = fixtureBundle();
const dir = tempDir("nodescale-ssh-");
const base = join(dir, "base");
const clientKey = join(dir, "deploy_key");
const bundleFile = join(dir, "release.tar.gz");
const record = join(dir, "provisioned-release");
const secretsFile = join(dir, "etc", "secrets.json");
/** The machine's host proof key (root 0600 on a Droplet, from its user data). */
const proofFile = join(dir, "etc", "host-proof");
const daemons: ChildProcess[] = [];

async function startSshdHere(port: number): Promise<ChildProcess> {
  const sshd = startSshd(dir, port, join(dir, "authorized_keys"));
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
        NODESCALE_USER: "root",
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
function sshAsDeployKey(command: string, input: string) {
  const options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
  return spawnSync("ssh", ["-i", clientKey, "-p", String(port), ...options, "root@127.0.0.1", command], { encoding: "utf8", input });
}

let port = 0;
beforeAll(async () => {
  keygen(clientKey);
  writeFileSync(bundleFile, bundle.data);
  mkdirSync(join(base, "bin"), { recursive: true });
  writeFileSync(join(base, "provisioned"), "");
  // Records the release the receiver hands over; exits with the code in exit-code (the machine's verdict).
  writeFileSync(
    join(base, "bin", "provision.sh"),
    `#!/usr/bin/env bash\necho "$NODESCALE_BUNDLE_SHA256" > ${record}\nexit "$(cat ${join(dir, "exit-code")} 2>/dev/null || echo 0)"\n`,
  );
  chmodSync(join(base, "bin", "provision.sh"), 0o755);
  const receiver = join(dir, "receive-release");
  writeFileSync(receiver, renderReceiveRelease(base, secretsFile, process.execPath, undefined, proofFile));
  chmodSync(receiver, 0o755);
  const publicKey = readFileSync(`${clientKey}.pub`, "utf8").trim();
  writeFileSync(join(dir, "authorized_keys"), `${renderDeployAuthorizedKey(publicKey, receiver)}\n`);
  chmodSync(join(dir, "authorized_keys"), 0o600);
  port = await freePort();
  await startSshdHere(port);
});

afterAll(async () => {
  for (const sshd of daemons) sshd.kill("SIGTERM");
  await sleep(200);
});

beforeEach(() => {
  rmSync(record, { force: true });
  rmSync(join(dir, "exit-code"), { force: true });
  rmSync(join(base, "bundles"), { recursive: true, force: true });
});

describe("release over SSH", () => {
  it("delivers the release, verified, to the machine's provision step, which rolls it out", async () => {
    const result = await push(port);
    expect(result.status).toBe(0);
    expect(result.output).toContain(`nodescale-push: 127.0.0.1 serves release ${bundle.sha256.slice(0, 12)}`);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
    expect(readFileSync(join(base, "bundles", `${bundle.sha256}.tar.gz`)).equals(bundle.data)).toBe(true);
  });

  it("refuses bytes whose SHA-256 is not the one asked for, and keeps nothing", async () => {
    const wrong = "0".repeat(64);
    const result = await push(port, wrong);
    expect(result.status).toBe(1);
    expect(result.output).toContain(
      `nodescale-receive: the release arrived with SHA-256 ${bundle.sha256}, expected ${wrong}; refused (nothing changed)`,
    );
    expect(existsSync(record)).toBe(false);
    expect(existsSync(join(base, "bundles", `${wrong}.tar.gz`))).toBe(false);
    expect(existsSync(join(base, "bundles", `${wrong}.tar.gz.partial`))).toBe(false);
  });

  it("fails the deploy with the machine's own verdict when the rollout is refused there", async () => {
    writeFileSync(join(dir, "exit-code"), "3");
    const result = await push(port);
    expect(result.status).toBe(3);
    expect(result.output).toContain(`nodescale-push: 127.0.0.1 refused release ${bundle.sha256.slice(0, 12)} (exit 3)`);
  });

  it("keeps at most the current release's bundle and the newest one however many pushes fail", async () => {
    mkdirSync(join(base, "bundles"), { recursive: true });
    const current = "c".repeat(64);
    rmSync(join(base, "current"), { force: true });
    symlinkSync(join("releases", current), join(base, "current"));
    // Three earlier pushes the machine refused (512 MiB each at most), and the current release's bundle.
    for (const sha of [current, "1".repeat(64), "2".repeat(64), "3".repeat(64)]) writeFileSync(join(base, "bundles", `${sha}.tar.gz`), "x");
    try {
      writeFileSync(join(dir, "exit-code"), "3");
      expect((await push(port)).status).toBe(3);
      expect(readdirSync(join(base, "bundles")).sort()).toEqual([`${bundle.sha256}.tar.gz`, `${current}.tar.gz`].sort());
    } finally {
      rmSync(join(base, "current"), { force: true });
    }
  });

  it("sends nothing until the machine proves it holds the host proof key from its user data, then pins its host key", async () => {
    const key = "5b0e8f3a-7c1d-4e2b-9a6f-0d4c3b2a1e9f8d7c6b5a-4f3e-4d2c-8b1a-0f9e8d7c6b5a";
    mkdirSync(join(dir, "etc"), { recursive: true });
    writeFileSync(proofFile, key, { mode: 0o600 });
    rmSync(secretsFile, { force: true });
    try {
      const result = await push(port, bundle.sha256, {
        NODESCALE_HOST_PROOF: key,
        NODESCALE_MACHINE_ID: "proven",
        NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_PROOF_TOKEN",
        NODESCALE_TEST_PROOF_TOKEN: "proof-secret-1",
      });
      expect([result.status, result.output]).toEqual([0, expect.stringContaining("proves it is the machine Terraform created")]);
      expect(JSON.parse(readFileSync(secretsFile, "utf8"))).toEqual({ API_TOKEN: "proof-secret-1" });
      expect(readFileSync(join(dir, "known_hosts", "proven"), "utf8")).toMatch(/ssh-ed25519 /);
    } finally {
      rmSync(proofFile, { force: true });
    }
  });

  it.each([
    ["holds another key (an impostor in the path)", "another-key"],
    ["holds no key at all", undefined],
  ])("sends neither secrets nor release to a machine that %s, and forgets its host key", async (_, machineKey) => {
    mkdirSync(join(dir, "etc"), { recursive: true });
    if (machineKey !== undefined) writeFileSync(proofFile, machineKey, { mode: 0o600 });
    rmSync(secretsFile, { force: true });
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
      expect([existsSync(secretsFile), existsSync(record), existsSync(join(dir, "known_hosts", "impostor"))]).toEqual([
        false,
        false,
        false,
      ]);
    } finally {
      rmSync(proofFile, { force: true });
    }
  });

  it("refuses secrets larger than 64 KiB, keeping the ones it has", () => {
    mkdirSync(join(dir, "etc"), { recursive: true });
    writeFileSync(secretsFile, '{"KEPT":"1"}', { mode: 0o600 });
    const run = sshAsDeployKey("secrets", JSON.stringify({ BIG: "x".repeat(64 * 1024) }));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("nodescale-receive: secrets are larger than 65536 bytes; refused (nothing changed)");
    expect(readFileSync(secretsFile, "utf8")).toBe('{"KEPT":"1"}');
  });

  it("lets the deploy key run nothing but the receiver", () => {
    const run = sshAsDeployKey("cat /etc/shadow", "");
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'nodescale-receive: expected "release <sha256>", "secrets", "tls-export", "tls-import" or "prove <challenge>", got "cat /etc/shadow"',
    );
  });

  it("sends the secrets from the deploying shell to a root-only file before the release, printing no value", async () => {
    rmSync(secretsFile, { force: true });
    const value = "over-ssh-secret-6a2f";
    const result = await push(port, bundle.sha256, {
      NODESCALE_SECRETS: "API_TOKEN=NODESCALE_TEST_SSH_TOKEN",
      NODESCALE_TEST_SSH_TOKEN: value,
    });
    expect(result.status).toBe(0);
    expect(result.output).toContain("nodescale-receive: 1 secret(s) received");
    expect(result.output).not.toContain(value);
    expect(JSON.parse(readFileSync(secretsFile, "utf8"))).toEqual({ API_TOKEN: value });
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
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
    writeFileSync(secretsFile, '{"KEEP":"x"}', { mode: 0o600 });
    const run = sshAsDeployKey("secrets", '{"A": 1}');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("nodescale-receive: secrets must be a JSON object of names to strings; refused (nothing changed)");
    expect(readFileSync(secretsFile, "utf8")).toBe('{"KEEP":"x"}');
  });

  it("waits for a machine that is still booting (sshd not up yet), then delivers", async () => {
    const later = await freePort();
    const pushing = push(later);
    await sleep(3000);
    await startSshdHere(later);
    const result = await pushing;
    expect(result.status).toBe(0);
    expect(readFileSync(record, "utf8").trim()).toBe(bundle.sha256);
  });

  it("waits for a new machine to finish provisioning before it takes the release", async () => {
    rmSync(join(base, "provisioned"));
    const pushing = push(port);
    await sleep(2000);
    expect(existsSync(record)).toBe(false);
    writeFileSync(join(base, "provisioned"), "");
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
