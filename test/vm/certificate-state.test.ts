import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { s3CertificateState } from "../../constructs/vm/bundle-source";
import { tempDir } from "../helpers/fixtures";

// EC2's replacement machine takes over the certificate its predecessor kept in the release bucket. The bucket is
// stood in for by a local file (`s3 cp` copies it), the public CAs by a test CA (trustedCa): the same provision lines
// otherwise, run by bash with openssl.
const DOMAIN = "orders.example.com";

function openssl(args: string[], cwd: string): void {
  const run = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${run.stderr}`);
}

/** A test CA and a certificate it signs for `name` (90 days), with its key: the files' paths. */
function issue(dir: string, name: string, signer: "ca" | "self" = "ca"): { chain: string; key: string } {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, "ca.pem"))) {
    openssl(
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365"].concat([
        "-subj",
        "/CN=Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
      ]),
      dir,
    );
  }
  const base = `${name}-${signer}`;
  openssl(
    [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.csr`,
    ],
    dir,
  );
  writeFileSync(join(dir, `${base}.ext`), `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`);
  const sign = signer === "ca" ? ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"] : ["-signkey", `${base}.key`];
  openssl(["x509", "-req", "-in", `${base}.csr`, ...sign, "-days", "90", "-extfile", `${base}.ext`, "-out", `${base}.pem`], dir);
  return { chain: join(dir, `${base}.pem`), key: join(dir, `${base}.key`) };
}

/** Runs the restore lines against `object` (the bucket's content) on a machine laid out under a temp folder. */
function restore(object: Buffer | undefined, ca: string) {
  const root = tempDir("nodescale-cert-state-");
  const paths = {
    imported: join(root, "tls", "imported"),
    letsencryptDir: join(root, "letsencrypt"),
    uriFile: join(root, "tls", "state-uri"),
  };
  mkdirSync(join(root, "tls"), { recursive: true });
  mkdirSync(paths.letsencryptDir);
  const bucket = join(root, "bucket");
  if (object !== undefined) writeFileSync(bucket, object);
  const { restoreState } = s3CertificateState("tls/certificate.pem", { domain: DOMAIN, trustedCa: ca, ...paths });
  const script = [
    "set -euo pipefail",
    'log() { echo "nodescale-provision: $*"; }',
    "instance_tag() { echo bucket; }",
    // The stand-in for the release bucket: `s3 cp --only-show-errors s3://bucket/KEY DEST` copies the local file.
    `s3() { [ -f ${bucket} ] && cp ${bucket} "$4"; }`,
    restoreState,
  ].join("\n");
  const run = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  return { run, root, ...paths, files: (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : []) };
}

describe("EC2: the certificate a replaced machine kept in the bucket (s3CertificateState)", () => {
  const pki = join(tempDir("nodescale-cert-pki-"), "pki");
  const good = issue(pki, DOMAIN);
  const ca = join(pki, "ca.pem");

  it("takes over a pair the CA signed for the domain, with its key, as the certificate taken over (0700)", () => {
    const pair = Buffer.concat([readFileSync(good.chain), readFileSync(good.key)]);
    const r = restore(pair, ca);
    expect([r.run.status, r.run.stdout]).toEqual([
      0,
      `nodescale-provision: took over the certificate for ${DOMAIN} kept by the machine this one replaces\n`,
    ]);
    expect(r.files(r.imported)).toEqual(["fullchain.pem", "privkey.pem"]);
    expect(statSync(r.imported).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(r.imported, "fullchain.pem"), "utf8")).toBe(readFileSync(good.chain, "utf8"));
    // certbot's folder is never written from the bucket.
    expect(r.files(r.letsencryptDir)).toEqual([]);
  });

  it("restores no certbot configuration: a kept folder with a renewal hook and cli.ini is ignored, nothing unpacked", () => {
    const work = tempDir("nodescale-cert-hostile-");
    mkdirSync(join(work, "renewal"));
    writeFileSync(join(work, "renewal", `${DOMAIN}.conf`), "[renewalparams]\npost_hook = touch /tmp/pwned-by-bucket\n");
    writeFileSync(join(work, "cli.ini"), "post-hook = touch /tmp/pwned-by-bucket\n");
    const tar = spawnSync("tar", ["-C", work, "-czf", "-", "."]).stdout;
    const r = restore(tar, ca);
    expect(r.run.status).toBe(0);
    expect(r.run.stdout).toContain(
      "the kept certificate is not one for orders.example.com from a trusted CA with 30+ days left and its key; not used",
    );
    expect([r.files(r.letsencryptDir), r.files(r.imported)]).toEqual([[], []]);
  });

  it.each([
    ["signed by no trusted CA (self-signed)", () => issue(pki, DOMAIN, "self")],
    ["for another domain", () => issue(pki, "other.example.com")],
  ])("refuses a certificate %s", (_, make) => {
    const pair = make();
    const r = restore(Buffer.concat([readFileSync(pair.chain), readFileSync(pair.key)]), ca);
    expect(r.run.stdout).toContain("not used");
    expect(r.files(r.imported)).toEqual([]);
  });

  it("refuses a certificate that comes with another key than its own", () => {
    const other = issue(pki, "other.example.com");
    const r = restore(Buffer.concat([readFileSync(good.chain), readFileSync(other.key)]), ca);
    expect(r.run.stdout).toContain("not used");
    expect(r.files(r.imported)).toEqual([]);
  });

  it("starts without one when the bucket has none (a first machine)", () => {
    const r = restore(undefined, ca);
    expect([r.run.status, r.run.stdout, r.files(r.imported)]).toEqual([0, "", []]);
  });
});
