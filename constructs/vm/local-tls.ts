import { execFileSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where the local stack keeps its CA and the certificate Nginx serves (under the deployment's state folder). */
export interface LocalTlsFiles {
  readonly dir: string;
  /** The CA's certificate: what a client trusts (the `ca_cert` output). */
  readonly caCert: string;
  readonly caKey: string;
  /** The server certificate Nginx serves, and its key. */
  readonly cert: string;
  readonly key: string;
}

export function localTlsFiles(stateDir: string): LocalTlsFiles {
  const dir = join(stateDir, "tls");
  return { dir, caCert: join(dir, "ca.crt"), caKey: join(dir, "ca.key"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
}

/** Names the local certificate is valid for: what a client on this machine dials. */
export const LOCAL_TLS_NAMES = { dns: ["localhost"], ips: ["127.0.0.1", "::1"] } as const;

const DAY_MS = 24 * 3600 * 1000;
/** The CA lives long, so a person who trusted it once keeps trusting it; the server certificate is short-lived. */
const CA_DAYS = 3650;
const SERVER_DAYS = 90;
/** A certificate with less left than this is replaced at the next deploy: the local stack's "renewal". */
export const RENEW_BEFORE_DAYS = 30;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new Error("local HTTPS needs the openssl command (Debian/Ubuntu: apt-get install openssl)");
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim().split("\n").slice(-3).join(" ") ?? e.message}`);
  }
}

function usable(path: string, now: Date): X509Certificate | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const cert = new X509Certificate(readFileSync(path));
    return new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS ? cert : undefined;
  } catch {
    return undefined;
  }
}

/** TLS server authentication: the only use the local CA's certificates have. */
const SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";

/**
 * The local CA's name constraints: loopback DNS and IP names only, and no e-mail or URI name at all (both limited to
 * the reserved `.invalid`, which names nothing), so that S/MIME, client or URI (SPIFFE-style) certificates it signed
 * never verify.
 */
export const LOCAL_CA_NAME_CONSTRAINTS =
  "nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,permitted;email:nodescale.invalid,permitted;URI:nodescale.invalid";

/** A CA made before it was limited to server authentication (no EKU) is replaced, as an expiring one is. */
const serverAuthOnly = (ca: X509Certificate) => {
  const uses = ca.keyUsage;
  return Array.isArray(uses) && uses.length === 1 && uses[0] === SERVER_AUTH_OID;
};

/** openssl arguments for a new, unencrypted P-256 key written to `keyFile`. */
const newP256Key = (keyFile: string) => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile];

/** Moves `<stem>.key.new`/`<stem>.crt.new` into place, the key 0600 and first: Nginx reading a new certificate with the old key would refuse to reload. */
function installPair(dir: string, stem: string, key: string, cert: string): void {
  chmodSync(join(dir, `${stem}.key.new`), 0o600);
  renameSync(join(dir, `${stem}.key.new`), key);
  renameSync(join(dir, `${stem}.crt.new`), cert);
}

/**
 * Makes sure the local CA and a server certificate signed by it exist, are valid for more than RENEW_BEFORE_DAYS and
 * cover LOCAL_TLS_NAMES; creates or replaces what does not. The CA may sign only loopback names (name constraints,
 * no e-mail or URI names) for server authentication only (its extended key usage), so trusting it, even system-wide,
 * trusts nothing else. Keys are 0600 in a 0700 folder. Returns what it did.
 */
export function ensureLocalTls(files: LocalTlsFiles, label: string, now = new Date()): "kept" | "issued" | "created" {
  // Only the key folder is 0700: a recursive mkdir would give its parents (the state folder) that mode too, and
  // Nginx's workers must look into the state folder (the keep-alive-off file, docs/zero-downtime.md).
  mkdirSync(dirname(files.dir), { recursive: true });
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  chmodSync(files.dir, 0o700);
  let ca = existsSync(files.caKey) ? usable(files.caCert, now) : undefined;
  if (ca !== undefined && !serverAuthOnly(ca)) ca = undefined;
  let created = false;
  if (ca === undefined) {
    openssl(
      [
        "req",
        "-x509",
        "-new",
        ...newP256Key("ca.key.new"),
        "-out",
        "ca.crt.new",
        "-days",
        String(CA_DAYS),
        "-sha256",
        "-subj",
        `/CN=NodeScale local CA (${label.replace(/[^A-Za-z0-9 ._-]/g, "")})`,
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        // Server authentication only: verifiers that chain EKUs (OpenSSL, browsers) refuse anything else it signs.
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-addext",
        LOCAL_CA_NAME_CONSTRAINTS,
      ],
      files.dir,
    );
    installPair(files.dir, "ca", files.caKey, files.caCert);
    ca = new X509Certificate(readFileSync(files.caCert));
    created = true;
  }
  const server = existsSync(files.key) ? usable(files.cert, now) : undefined;
  const covers = (cert: X509Certificate) =>
    LOCAL_TLS_NAMES.dns.every((name) => cert.checkHost(name) !== undefined) &&
    LOCAL_TLS_NAMES.ips.every((ip) => cert.checkIP(ip) !== undefined);
  if (!created && server !== undefined && server.verify(ca.publicKey) && covers(server)) return "kept";

  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    `subjectAltName=${[...LOCAL_TLS_NAMES.dns.map((d) => `DNS:${d}`), ...LOCAL_TLS_NAMES.ips.map((ip) => `IP:${ip}`)].join(",")}`,
  ].join("\n");
  writeFileSync(join(files.dir, "server.ext"), `${extensions}\n`);
  try {
    openssl(["req", "-new", ...newP256Key("server.key.new"), "-out", "server.csr"].concat(["-subj", "/CN=localhost"]), files.dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        files.caCert,
        "-CAkey",
        files.caKey,
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-days",
        String(SERVER_DAYS),
        "-sha256",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt.new",
      ],
      files.dir,
    );
    installPair(files.dir, "server", files.key, files.cert);
  } finally {
    for (const scratch of ["server.ext", "server.csr", "server.key.new", "server.crt.new"])
      rmSync(join(files.dir, scratch), { force: true });
  }
  return created ? "created" : "issued";
}
