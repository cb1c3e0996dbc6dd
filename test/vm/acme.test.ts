import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { HSTS_MAX_AGE_SECONDS } from "../../constructs/service/rules";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { renderCertificateScript, renderCertificateUnits } from "../../constructs/vm/acme";
import { processPlan } from "../../constructs/vm/plan";
import { renderNginxMain, renderNginxSite } from "../../constructs/vm/render";
import { runAsync } from "../helpers/local-deploy";
import { freePort, sleep, waitFor } from "../helpers/processes";
import { shellcheck, systemdVerify } from "../helpers/tools";

// One machine ending TLS for its own domain with an ACME certificate, run for real: Nginx, certbot and Pebble (the
// ACME test CA Let's Encrypt publishes, from Debian's `pebble` package) with its DNS stand-in answering 127.0.0.1.
// `*.localhost` names reach loopback in curl without DNS, as the domain reaches the machine in production.
const DOMAIN = "orders.localhost";
// The renewal test sends new HTTPS connections back to back from one address, as fast as the machine allows: the
// per-client limit would answer that 429 by design (test/vm/edge.test.ts proves the limits), so it is raised here.
const spec = NodeServiceSpec.parse({
  name: "orders-api",
  port: 4000,
  workers: 2,
  domain: DOMAIN,
  clientLimits: { requestsPerSecond: 100_000, burst: 100_000, connections: 10_000 },
});
const plan = processPlan(spec, "cluster");

// Removed by this file's afterAll, after Nginx stops (it reads its pid file from here).
const dir = mkdtempSync(join(tmpdir(), "nodescale-acme-"));
const le = join(dir, "letsencrypt");
const link = join(dir, "tls", "live");
const script = join(dir, "certificate.sh");
const nginxArgs = ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "logs", "error.log")];
const children: ChildProcess[] = [];
let ports: Record<"api" | "management" | "dns" | "http" | "https" | "app", number>;
let pebbleRoot = "";
let env: NodeJS.ProcessEnv;

function run(args: string[] = []): { status: number | null; output: string } {
  const done = spawnSync("bash", [script, ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { status: done.status, output: `${done.stdout}${done.stderr}` };
}

function start(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { stdio: "ignore", env: { ...process.env, ...extraEnv } });
  children.push(child);
  return child;
}

/** The certificate a TLS handshake for `servername` gets, or the handshake's error. */
function handshake(servername: string): Promise<PeerCertificate | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: ports.https, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on("error", (error) => resolve(error));
  });
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
}

function overHttps(path: string, host = DOMAIN): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port: ports.https, path, servername: DOMAIN, headers: { host }, ca: pebbleRoot, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function overHttp(path: string, host: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: ports.http, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  for (const tool of ["pebble", "pebble-challtestsrv", "certbot"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is needed for this test (apt-get install -y pebble certbot)`);
    }
  }
  ports = {
    api: await freePort(),
    management: await freePort(),
    dns: await freePort(),
    http: await freePort(),
    https: await freePort(),
    app: await freePort(),
  };
  for (const sub of ["logs", "tmp", "webroot", "tls"]) mkdirSync(join(dir, sub));
  // Nginx's workers (not root) read the challenge files, as www-data does on a machine.
  chmodSync(dir, 0o755);
  // Pebble's own API certificate (its ACME directory is HTTPS only).
  const made = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=pebble"].concat([
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "pebble.key"),
      "-out",
      join(dir, "pebble.crt"),
    ]),
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(made.stderr);
  writeFileSync(
    join(dir, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${ports.api}`,
        managementListenAddress: `127.0.0.1:${ports.management}`,
        certificate: join(dir, "pebble.crt"),
        privateKey: join(dir, "pebble.key"),
        httpPort: ports.http,
        tlsPort: ports.https,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  start(
    "pebble-challtestsrv",
    ["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", `127.0.0.1:${ports.dns}`].concat([
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `127.0.0.1:${await freePort()}`,
    ]),
  );
  start("pebble", ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${ports.dns}`], {
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: "0",
  });
  const pebbleCa = `${spawnSync("cat", [join(dir, "pebble.crt")], { encoding: "utf8" }).stdout}`;
  await waitFor("Pebble's directory", () => fetchText(`https://127.0.0.1:${ports.api}/dir`, pebbleCa).catch(() => undefined), 15_000);
  pebbleRoot = await fetchText(`https://127.0.0.1:${ports.management}/roots/0`, pebbleCa);
  writeFileSync(join(dir, "pebble-root.pem"), pebbleRoot);
  // certbot trusts Pebble's API through the standard variable of its HTTP library.
  env = { ...process.env, REQUESTS_CA_BUNDLE: join(dir, "pebble.crt") };

  start(process.execPath, ["-e", `require("http").createServer((q, s) => s.end("ok")).listen(${ports.app}, "127.0.0.1")`]);
  writeFileSync(join(dir, "upstream.conf"), `server 127.0.0.1:${ports.app};\n`);
  writeFileSync(
    script,
    renderCertificateScript({
      domain: DOMAIN,
      acmeServer: `https://127.0.0.1:${ports.api}/dir`,
      probeBase: `http://${DOMAIN}:${ports.http}`,
      webroot: join(dir, "webroot"),
      tlsLink: link,
      placeholder: join(dir, "tls", "placeholder"),
      letsencryptDir: le,
      workDir: join(dir, "work"),
      logsDir: join(dir, "certbot-logs"),
      self: script,
      reloadNginx: [`nginx -t -q ${nginxArgs.join(" ")}`, `nginx ${nginxArgs.join(" ")} -s reload`],
      saveState: [`tar -C ${le} -czf ${join(dir, "saved.tar.gz")} .`],
    }),
    { mode: 0o755 },
  );
  writeFileSync(
    join(dir, "site.conf"),
    renderNginxSite(spec, plan, {
      listen: [`127.0.0.1:${ports.http}`],
      tls: {
        listen: [`127.0.0.1:${ports.https}`],
        certificate: `${link}/fullchain.pem`,
        certificateKey: `${link}/privkey.pem`,
        hstsSeconds: HSTS_MAX_AGE_SECONDS,
      },
      onlyHost: DOMAIN,
      acmeWebroot: join(dir, "webroot"),
      accessLog: "off",
      upstreamFile: join(dir, "upstream.conf"),
    }),
  );
  writeFileSync(join(dir, "nginx.conf"), renderNginxMain({ prefix: dir, siteFile: join(dir, "site.conf") }));
}, 60_000);

afterAll(async () => {
  spawnSync("nginx", [...nginxArgs, "-s", "stop"]);
  for (const child of children) child.kill("SIGKILL");
  await sleep(200);
  rmSync(dir, { recursive: true, force: true });
});

describe("HTTPS on one machine with a Let's Encrypt-style certificate (Pebble, certbot, Nginx for real)", () => {
  it("renders a script that passes shellcheck and units that pass systemd-analyze verify", () => {
    expect(shellcheck(renderCertificateScript({ domain: "orders.example.com", self: "/opt/nodescale/bin/certificate.sh" }))).toBe("");
    const units = renderCertificateUnits("orders.example.com", "/usr/local/bin/nodescale-certificate");
    expect(systemdVerify("nodescale-certificate.service", units.service).output).toBe("");
    expect(
      systemdVerify("nodescale-certificate.timer", units.timer.replace("[Timer]", "[Timer]\nUnit=nodescale-certificate.service")).status,
    ).toBe(0);
    expect(units.timer).toContain("OnUnitActiveSec=1min");
  });

  it("starts on a placeholder: challenges, redirects and the checks by address work before any certificate", async () => {
    const placed = run(["placeholder"]);
    expect(placed.output).toContain(`nodescale-certificate: placeholder certificate for ${DOMAIN} until the CA's is here`);
    expect(readlinkSync(link)).toBe(join(dir, "tls", "placeholder"));
    const started = spawnSync("nginx", nginxArgs, { encoding: "utf8" });
    expect(started.stderr).toBe("");
    await sleep(300);

    const redirected = await overHttp("/orders?id=1", DOMAIN);
    expect(redirected.status).toBe(308);
    expect(redirected.headers.location).toBe(`https://${DOMAIN}/orders?id=1`);
    mkdirSync(join(dir, "webroot", ".well-known", "acme-challenge"), { recursive: true });
    writeFileSync(join(dir, "webroot", ".well-known", "acme-challenge", "t0k3n"), "t0k3n.thumb");
    expect((await overHttp("/.well-known/acme-challenge/t0k3n", DOMAIN)).status).toBe(200);
    expect((await overHttp("/.well-known/acme-challenge/t0k3n", "127.0.0.1")).status).toBe(200);
    // By the machine's address: the health and ready paths (a replacement is proven there), nothing else.
    expect((await overHttp(spec.healthPath, "127.0.0.1")).status).toBe(200);
    expect((await overHttp(spec.readyPath, "127.0.0.1")).status).toBe(200);
    expect((await overHttp("/orders", "127.0.0.1")).status).toBe(421);
    expect((await overHttp("/orders", "other.localhost")).status).toBe(421);
    const before = await handshake(DOMAIN);
    expect("code" in before).toBe(false);
    expect((before as PeerCertificate).issuer.CN).toBe(DOMAIN);
  });

  it("waits, without asking the CA, while the domain does not reach this machine", () => {
    const probeElsewhere = renderCertificateScript({
      domain: DOMAIN,
      acmeServer: `https://127.0.0.1:${ports.api}/dir`,
      probeBase: `http://${DOMAIN}:${ports.app}`,
      webroot: join(dir, "webroot"),
      tlsLink: link,
      letsencryptDir: le,
      self: script,
    });
    const waited = spawnSync("bash", ["-c", probeElsewhere], { encoding: "utf8", env });
    expect(waited.status).toBe(0);
    expect(waited.stdout).toBe(
      `nodescale-certificate: waiting: http://${DOMAIN} does not reach this machine yet (its DNS record); trying again in a minute\n`,
    );
    expect(existsSync(join(le, "accounts"))).toBe(false);
  });

  it("obtains the certificate once the domain reaches the machine and serves it with HSTS, over HTTP/2", async () => {
    const issued = run();
    expect(issued.output).toContain(`nodescale-certificate: requesting a certificate for ${DOMAIN}`);
    expect(issued.output).toContain(`nodescale-certificate: serving the certificate for ${DOMAIN}, valid until`);
    expect(issued.status).toBe(0);
    expect(readlinkSync(link)).toBe(join(le, "live", DOMAIN));
    expect(existsSync(join(dir, "saved.tar.gz"))).toBe(true);

    const served = (await handshake(DOMAIN)) as PeerCertificate;
    expect(served.subjectaltname).toBe(`DNS:${DOMAIN}`);
    expect(served.issuer.CN).toMatch(/^Pebble Intermediate CA/);
    const answer = await overHttps("/orders");
    expect(answer.status).toBe(200);
    expect(answer.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE_SECONDS}`);
    const h2 = spawnSync(
      "curl",
      ["-sS", "-o", "/dev/null", "-w", "%{http_version}", "--cacert", join(dir, "pebble-root.pem")].concat([
        "--resolve",
        `${DOMAIN}:${ports.https}:127.0.0.1`,
        `https://${DOMAIN}:${ports.https}/`,
      ]),
      { encoding: "utf8" },
    );
    expect(h2.stdout).toBe("2");
  }, 60_000);

  it("refuses a TLS handshake for another name, and a request for another Host gets 421", async () => {
    const other = await handshake("other.localhost");
    expect("code" in other && other.code).toBe("ERR_SSL_TLSV1_UNRECOGNIZED_NAME");
    expect((await overHttps("/orders", "other.localhost")).status).toBe(421);
  });

  it("keeps a certificate it has: a later run changes nothing", () => {
    const again = run();
    expect(again).toEqual({ status: 0, output: "" });
  });

  it("installs a renewal with a graceful reload: every new HTTPS connection during it succeeds", async () => {
    const first = ((await handshake(DOMAIN)) as PeerCertificate).serialNumber;
    let stop = false;
    let ok = 0;
    const failed: string[] = [];
    const load = (async () => {
      while (!stop) {
        await overHttps("/orders").then(
          (a) => (a.status === 200 ? ok++ : failed.push(String(a.status))),
          (e: Error) => failed.push(e.message),
        );
      }
    })();
    // As certbot.timer runs it: with the renewal settings saved at issuance (the CA, the webroot, the deploy hook).
    const renewed = await runAsync(
      "certbot",
      ["renew", "--force-renewal", "--no-random-sleep-on-renew", "--non-interactive", "--config-dir", le].concat([
        "--work-dir",
        join(dir, "work"),
        "--logs-dir",
        join(dir, "certbot-logs"),
      ]),
      env,
    );
    await sleep(500);
    stop = true;
    await load;
    expect(renewed.status).toBe(0);
    expect(renewed.output).toContain(`nodescale-certificate: serving the certificate for ${DOMAIN}`);
    expect(((await handshake(DOMAIN)) as PeerCertificate).serialNumber).not.toBe(first);
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(20);
  }, 90_000);
});
