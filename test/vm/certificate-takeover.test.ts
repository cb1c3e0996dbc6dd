import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { renderCertificateScript } from "../../constructs/vm/acme";
import { processPlan } from "../../constructs/vm/plan";
import { renderNginxMain, renderNginxSite } from "../../constructs/vm/render";
import { PUSH_RELEASE_SCRIPT, renderDeployAuthorizedKey, renderReceiveRelease } from "../../constructs/vm/ssh-release";
import { fixtureBundle, tempDir } from "../helpers/fixtures";
import { listening } from "../helpers/local-deploy";
import { freePort, sleep, waitFor } from "../helpers/processes";
import { keygen, startSshd } from "../helpers/sshd";

// One Droplet with a domain replaced by a new one: the new machine takes over the certificate the old one serves,
// old machine -> the deploying shell's pipe -> new machine, over the SSH release channel, for real (two sshd, the
// rendered receivers, certificate scripts and push script), and each machine's Nginx (the rendered site, main
// config and reload) serves what its link points at: a TLS handshake proves the new machine serves the old one's
// certificate. A private CA stands in for Let's Encrypt; the provision step after the receiver (the release's
// rollout, tested on its own) is `exit 0`; the SSH login is root's with the forced command (the deploy user and
// sudo are proven in ssh-release.test.ts).
const DOMAIN = "orders.example.com";
const spec = NodeServiceSpec.parse({ name: "orders-api", port: 4000, domain: DOMAIN });
const bundle = fixtureBundle();
const dir = tempDir("nodescale-takeover-");
const clientKey = join(dir, "deploy_key");
const daemons: ChildProcess[] = [];

function openssl(args: string[]): void {
  const run = spawnSync("openssl", args, { encoding: "utf8", cwd: dir });
  if (run.status !== 0) throw new Error(`openssl ${args[0]}: ${run.stderr}`);
}

/** A certificate for `name` signed by `ca` (or self-signed without one), into `out`/fullchain.pem and privkey.pem. */
function issue(out: string, name: string, ca?: string): void {
  mkdirSync(out, { recursive: true });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(out, "privkey.pem")];
  if (ca === undefined) {
    openssl([
      "req",
      "-x509",
      ...key,
      "-days",
      "90",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
      "-out",
      join(out, "fullchain.pem"),
    ]);
    return;
  }
  openssl(["req", "-new", ...key, "-subj", `/CN=${name}`, "-out", join(out, "csr.pem")]);
  writeFileSync(join(out, "ext"), `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`);
  openssl(
    ["x509", "-req", "-in", join(out, "csr.pem"), "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "90"].concat([
      "-extfile",
      join(out, "ext"),
      "-out",
      join(out, "fullchain.pem"),
    ]),
  );
}

interface Machine {
  readonly base: string;
  readonly link: string;
  readonly port: number;
  /** Its Nginx's HTTPS port. */
  readonly https: number;
}

const nginxArgs = (base: string) => ["-p", base, "-c", join(base, "nginx.conf"), "-e", join(base, "logs", "error.log")];

/**
 * A machine with the SSH release channel and HTTPS for DOMAIN: its receiver, certificate script, sshd and Nginx
 * (the rendered site ending TLS with the certificate its link points at; reloaded by the certificate script).
 */
async function machine(name: string): Promise<Machine> {
  const base = join(dir, name);
  const link = join(base, "tls", "live");
  mkdirSync(join(base, "bin"), { recursive: true });
  mkdirSync(join(base, "tls"), { recursive: true });
  for (const sub of ["logs", "tmp", "webroot"]) mkdirSync(join(base, sub));
  const https = await freePort();
  writeFileSync(join(base, "upstream.conf"), `server 127.0.0.1:${await freePort()};\n`);
  writeFileSync(
    join(base, "site.conf"),
    renderNginxSite(spec, processPlan(spec, "cluster"), {
      listen: [`127.0.0.1:${await freePort()}`],
      tls: { listen: [`127.0.0.1:${https}`], certificate: `${link}/fullchain.pem`, certificateKey: `${link}/privkey.pem` },
      onlyHost: DOMAIN,
      acmeWebroot: join(base, "webroot"),
      accessLog: "off",
      upstreamFile: join(base, "upstream.conf"),
    }),
  );
  writeFileSync(join(base, "nginx.conf"), renderNginxMain({ prefix: base, siteFile: join(base, "site.conf") }));
  const nginxCli = nginxArgs(base).join(" ");
  writeFileSync(join(base, "provisioned"), "");
  writeFileSync(join(base, "bin", "provision.sh"), "#!/usr/bin/env bash\nexit 0\n", { mode: 0o755 });
  const certificateScript = join(base, "bin", "certificate.sh");
  writeFileSync(
    certificateScript,
    renderCertificateScript({
      domain: DOMAIN,
      webroot: join(base, "webroot"),
      tlsLink: link,
      placeholder: join(base, "tls", "placeholder"),
      imported: join(base, "tls", "imported"),
      letsencryptDir: join(base, "letsencrypt"),
      self: certificateScript,
      reloadNginx: [`nginx -t -q ${nginxCli}`, `nginx ${nginxCli} -s reload`, `echo reloaded >> ${join(base, "reloads")}`],
    }),
    { mode: 0o755 },
  );
  const receiver = join(base, "receive-release");
  writeFileSync(
    receiver,
    renderReceiveRelease(base, join(base, "secrets.json"), process.execPath, {
      domain: DOMAIN,
      link,
      imported: join(base, "tls", "imported"),
      certificateScript,
      trustedCa: join(dir, "ca.crt"),
    }),
    { mode: 0o755 },
  );
  const keys = join(base, "authorized_keys");
  writeFileSync(keys, `${renderDeployAuthorizedKey(readFileSync(`${clientKey}.pub`, "utf8"), receiver)}\n`, { mode: 0o600 });
  const port = await freePort();
  daemons.push(startSshd(base, port, keys));
  // A direct ssh (importDirectly) does not retry as the push does: the machine is up once its sshd listens.
  await waitFor(`${name}'s sshd`, async () => ((await listening("127.0.0.1", port)) ? true : undefined));
  spawnSync("bash", [certificateScript, "placeholder"]);
  // In the foreground, so this test stops it by its process even after its folder is gone.
  const nginx = spawn("nginx", [...nginxArgs(base), "-g", "daemon off;"], { stdio: "ignore" });
  daemons.push(nginx);
  await waitFor(`${name}'s Nginx`, async () => ((await listening("127.0.0.1", https)) ? true : undefined));
  return { base, link, port, https };
}

/** The SHA-256 fingerprint of the certificate a machine's Nginx serves in a TLS handshake for DOMAIN. */
function servedFingerprint(on: Machine): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: on.https, servername: DOMAIN, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

const fileFingerprint = (pemFile: string) => new X509Certificate(readFileSync(pemFile)).fingerprint256;

function push(to: Machine, from: { port: number }) {
  return new Promise<{ status: number | null; output: string }>((resolve) => {
    const child = spawn("bash", [PUSH_RELEASE_SCRIPT], {
      env: {
        ...process.env,
        NODESCALE_HOST: "127.0.0.1",
        NODESCALE_SSH_PORT: String(to.port),
        NODESCALE_USER: "root",
        NODESCALE_KEY_FILE: clientKey,
        NODESCALE_SHA256: bundle.sha256,
        NODESCALE_BUNDLE: join(dir, "release.tar.gz"),
        NODESCALE_MACHINE_ID: `machine-${to.port}`,
        NODESCALE_KNOWN_HOSTS_DIR: join(dir, "known_hosts"),
        NODESCALE_CONNECT_WAIT_SECONDS: "30",
        NODESCALE_TLS_FROM: "127.0.0.1",
        NODESCALE_TLS_FROM_PORT: String(from.port),
      },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (status) => resolve({ status, output }));
  });
}

function importDirectly(to: Machine, pair: string) {
  const options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"];
  return spawnSync("ssh", ["-i", clientKey, "-p", String(to.port), ...options, "root@127.0.0.1", "tls-import"], {
    encoding: "utf8",
    input: pair,
  });
}

const pem = (folder: string) =>
  `${readFileSync(join(folder, "fullchain.pem"), "utf8")}${readFileSync(join(folder, "privkey.pem"), "utf8")}`;

let oldMachine: Machine;
let newMachine: Machine;

beforeAll(async () => {
  keygen(clientKey);
  writeFileSync(join(dir, "release.tar.gz"), bundle.data);
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key"].concat([
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=Test ACME CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
    ]),
  );
  oldMachine = await machine("old");
  newMachine = await machine("new");
  // The old machine serves a certificate from the CA (its own, as certbot would have left it).
  issue(join(oldMachine.base, "tls", "issued"), DOMAIN, join(dir, "ca"));
  spawnSync("ln", ["-sfn", join(oldMachine.base, "tls", "issued"), oldMachine.link]);
  spawnSync("nginx", [...nginxArgs(oldMachine.base), "-s", "reload"]);
  await sleep(500);
}, 30_000);

afterAll(async () => {
  for (const daemon of daemons) daemon.kill("SIGTERM");
  await sleep(200);
});

describe("a replacement Droplet takes over the certificate of the one it replaces", () => {
  it("with no machine at the stable address yet (a first deploy), goes on: the new machine gets its own", async () => {
    const result = await push(newMachine, { port: await freePort() });
    expect(result.output).toMatch(/nodescale-push: none taken over \(.*Connection refused\)/);
    expect(result.status).toBe(0);
    expect(readlinkSync(newMachine.link)).toBe(join(newMachine.base, "tls", "placeholder"));
  });

  it("from an old machine with only its placeholder, takes nothing and goes on", async () => {
    const placeholderOnly = await machine("placeholder-only");
    const result = await push(newMachine, placeholderOnly);
    expect(result.output).toContain(
      `nodescale-push: none taken over (nodescale-receive: no certificate for ${DOMAIN} worth taking over here)`,
    );
    expect(result.status).toBe(0);
  });

  it("moves the certificate and key to the new machine, whose Nginx serves it at once", async () => {
    const issued = fileFingerprint(join(oldMachine.base, "tls", "issued", "fullchain.pem"));
    await waitFor("the old machine's Nginx to serve its certificate", async () =>
      (await servedFingerprint(oldMachine)) === issued ? true : undefined,
    );
    const before = await servedFingerprint(newMachine);
    expect(before).toBe(fileFingerprint(join(newMachine.base, "tls", "placeholder", "fullchain.pem")));
    const result = await push(newMachine, oldMachine);
    expect(result.output).toContain("nodescale-push: the domain's certificate from 127.0.0.1 (the machine being replaced)");
    expect(result.output).toContain(`nodescale-certificate: serving the certificate for ${DOMAIN}, valid until`);
    expect(result.status).toBe(0);
    const imported = join(newMachine.base, "tls", "imported");
    expect(readlinkSync(newMachine.link)).toBe(imported);
    expect(pem(imported)).toBe(pem(join(oldMachine.base, "tls", "issued")));
    expect(statSync(join(imported, "privkey.pem")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(newMachine.base, "reloads"), "utf8")).toBe("reloaded\n");
    // The key went through the pipe only: never printed.
    expect(result.output).not.toContain("PRIVATE KEY");
    // A TLS handshake with the new machine gets the very certificate the old one serves.
    const served = await waitFor("the new machine's Nginx to serve the certificate taken over", async () => {
      const now = await servedFingerprint(newMachine);
      return now !== before ? now : undefined;
    });
    expect(served).toBe(await servedFingerprint(oldMachine));
    expect(served).toBe(issued);
  });

  it("keeps a certificate the new machine already serves", async () => {
    const result = await push(newMachine, oldMachine);
    expect(result.output).toContain(`nodescale-receive: this machine already serves a certificate for ${DOMAIN}; kept`);
    expect(readFileSync(join(newMachine.base, "reloads"), "utf8")).toBe("reloaded\n");
  });

  it.each([
    ["for another name", (out: string) => issue(out, "other.example.com", join(dir, "ca"))],
    ["from no trusted CA", (out: string) => issue(out, DOMAIN)],
  ])("refuses a certificate %s, changing nothing", async (_, make) => {
    const target = await machine(`refusing-${_.replace(/\W+/g, "-")}`);
    const out = join(dir, `bad-${target.port}`);
    make(out);
    const run = importDirectly(target, pem(out));
    expect(run.stderr).toContain(
      `nodescale-receive: the certificate is not one for ${DOMAIN} from a trusted CA with 30+ days left and its key; refused (nothing changed)`,
    );
    expect(run.status).toBe(1);
    expect(readlinkSync(target.link)).toBe(join(target.base, "tls", "placeholder"));
  });

  it("fails the push, before the address moves, when the new machine refuses what the old one serves", async () => {
    const target = await machine("strict");
    // This machine trusts another CA: the old machine's certificate does not chain to it.
    const receiver = join(target.base, "receive-release");
    writeFileSync(receiver, readFileSync(receiver, "utf8").replace(join(dir, "ca.crt"), "/dev/null"));
    chmodSync(receiver, 0o755);
    const result = await push(target, oldMachine);
    expect(result.output).toContain(
      "nodescale-push: 127.0.0.1 refused the certificate of the machine it replaces (exit 1); the address stays with the old machine",
    );
    expect(result.status).toBe(1);
  });
});
