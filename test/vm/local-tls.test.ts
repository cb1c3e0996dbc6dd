import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync, statSync } from "node:fs";
import { createServer, request } from "node:https";
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
      "X509v3 Name Constraints: critical Permitted: DNS:localhost IP:127.0.0.0/255.0.0.0 IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF",
    );
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
