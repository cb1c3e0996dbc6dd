import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:https";
import { join } from "node:path";
import { ensureLocalTls, localTlsFiles } from "../../constructs/vm/local-tls";
import { tempDir } from "../helpers/fixtures";
import { freePort } from "../helpers/processes";

const DAY_MS = 24 * 3600 * 1000;

describe("the local stack's certificate authority", () => {
  const dir = tempDir("nodescale-local-tls-");
  const files = localTlsFiles(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("creates a CA and a server certificate for loopback, keys readable by the owner only", () => {
    expect(ensureLocalTls(files, "local")).toBe("created");
    expect(statSync(files.dir).mode & 0o777).toBe(0o700);
    expect(statSync(files.caKey).mode & 0o777).toBe(0o600);
    expect(statSync(files.key).mode & 0o777).toBe(0o600);
    const ca = new X509Certificate(readFileSync(files.caCert));
    const server = new X509Certificate(readFileSync(files.cert));
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(ca.subject).toBe("CN=NodeScale local CA (local)");
    // A CA a person may trust in a browser signs loopback names only.
    const constraints = execFileSync("openssl", ["x509", "-noout", "-ext", "nameConstraints", "-in", files.caCert], { encoding: "utf8" });
    expect(constraints.replace(/\s+/g, " ").trim()).toBe(
      "X509v3 Name Constraints: critical Permitted: DNS:localhost IP:127.0.0.0/255.0.0.0 IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF email:nodescale.invalid URI:nodescale.invalid",
    );
    // For TLS servers only.
    expect(ca.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("signs nothing but loopback TLS servers: S/MIME, client, code-signing and URI certificates made with its key fail", () => {
    ensureLocalTls(files, "local");
    const work = tempDir("nodescale-local-ca-misuse-");
    /** A certificate for `name` with `extensions`, signed with the local CA's own key; openssl verify's verdict for `purpose`. */
    const verdict = (name: string, extensions: string, purpose?: string) => {
      const run = (args: string[]) => execFileSync("openssl", args, { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
      run([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-subj",
        `/CN=${name}`,
        "-out",
        `${name}.csr`,
      ]);
      writeFileSync(join(work, `${name}.ext`), extensions);
      run([
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        files.caCert,
        "-CAkey",
        files.caKey,
        "-set_serial",
        "7",
        "-days",
        "30",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.crt`,
      ]);
      const verify = spawnSync("openssl", ["verify", ...(purpose ? ["-purpose", purpose] : []), "-CAfile", files.caCert, `${name}.crt`], {
        cwd: work,
        encoding: "utf8",
      });
      return `${verify.stdout}${verify.stderr}`.match(/OK$|error \d+ at \d+ depth lookup: [^\n]+/gm) ?? [];
    };
    expect(verdict("server", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n", "sslserver")).toEqual(["OK"]);
    expect(verdict("smime", "subjectAltName=email:alice@example.com\nextendedKeyUsage=emailProtection\n", "smimesign")).toEqual([
      "error 26 at 1 depth lookup: unsuitable certificate purpose",
      "error 47 at 0 depth lookup: permitted subtree violation",
    ]);
    expect(verdict("client", "subjectAltName=DNS:localhost\nextendedKeyUsage=clientAuth\n", "sslclient")).toEqual([
      "error 26 at 1 depth lookup: unsuitable certificate purpose",
    ]);
    expect(verdict("uri", "subjectAltName=URI:spiffe://localhost/app,DNS:localhost\nextendedKeyUsage=serverAuth\n", "sslserver")).toEqual([
      "error 47 at 0 depth lookup: permitted subtree violation",
    ]);
    // Code signing: OpenSSL 3.0 has no code-signing purpose to verify against, so no verdict here; verifiers that chain
    // extended key usages (browsers, Windows) refuse a codeSigning leaf under this CA, whose only usage is serverAuth
    // (asserted in the first test).
  });

  it("replaces a CA made before these limits (no extended key usage) at the next deploy", () => {
    const old = localTlsFiles(tempDir("nodescale-local-tls-old-"));
    ensureLocalTls(old, "old");
    // The CA as it was made before: loopback name constraints only, any use.
    execFileSync(
      "openssl",
      ["req", "-x509", "-new", "-key", old.caKey, "-out", old.caCert, "-days", "3650", "-subj", "/CN=NodeScale local CA (old)"].concat([
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ]),
      { stdio: "ignore" },
    );
    expect(ensureLocalTls(old, "old")).toBe("created");
    expect(new X509Certificate(readFileSync(old.caCert)).keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("keeps both while they are valid, and renews only the server certificate when it nears expiry", () => {
    const caBefore = readFileSync(files.caCert, "utf8");
    const certBefore = readFileSync(files.cert, "utf8");
    expect(ensureLocalTls(files, "local")).toBe("kept");
    expect(readFileSync(files.cert, "utf8")).toBe(certBefore);
    expect(ensureLocalTls(files, "local", new Date(Date.now() + 70 * DAY_MS))).toBe("issued");
    expect(readFileSync(files.caCert, "utf8")).toBe(caBefore);
    expect(readFileSync(files.cert, "utf8")).not.toBe(certBefore);
  });

  it("is what a TLS client verifies the server against, by name and by address", async () => {
    const port = await freePort();
    const server = createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    try {
      const ca = readFileSync(files.caCert, "utf8");
      for (const url of [`https://127.0.0.1:${port}/`, `https://localhost:${port}/`]) {
        const res = await fetchWithCa(url, ca);
        expect(res).toBe("ok");
      }
      await expect(fetchWithCa(`https://127.0.0.1:${port}/`, undefined)).rejects.toThrow("unable to verify the first certificate");
    } finally {
      server.close();
    }
  });
});

function fetchWithCa(url: string, ca: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}
