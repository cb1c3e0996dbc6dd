import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { processPlan } from "../../constructs/vm/plan";
import {
  keepAliveOffFile,
  RETRY_AFTER_SECONDS,
  renderLoadBalancerSite,
  renderNginxMain,
  renderNginxSite,
} from "../../constructs/vm/render";
import { tempDir } from "../helpers/fixtures";
import { listening } from "../helpers/local-deploy";
import { freePort, waitFor } from "../helpers/processes";
import { NGINX_TEST_UPSTREAM, nginxTest } from "../helpers/tools";

// A tight rate, so a short burst crosses it: 1 request/s and 4 more at once.
const spec = NodeServiceSpec.parse({
  name: "orders-api",
  port: 4000,
  workers: 2,
  clientLimits: { requestsPerSecond: 1, burst: 4, connections: 50 },
});
const cluster = processPlan(spec, "cluster");

interface Answer {
  readonly status: number;
  readonly retryAfter?: string;
  readonly body: string;
  readonly requestId?: string;
  readonly appSaw?: string;
  readonly appSawProto?: string;
}

function get(
  port: number,
  options: { localAddress?: string; forwardedFor?: string; forwardedProto?: string; host?: string; path?: string; requestId?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.forwardedFor) headers["x-forwarded-for"] = options.forwardedFor;
    if (options.forwardedProto) headers["x-forwarded-proto"] = options.forwardedProto;
    if (options.host) headers.host = options.host;
    if (options.requestId) headers["x-request-id"] = options.requestId;
    const path = options.path ?? "/";
    const req = request({ host: "127.0.0.1", port, path, agent: false, localAddress: options.localAddress, headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: res.headers["retry-after"] as string | undefined,
          body,
          requestId: res.headers["x-request-id"] as string | undefined,
          appSaw: res.headers["x-app-saw-request-id"] as string | undefined,
          appSawProto: res.headers["x-app-saw-proto"] as string | undefined,
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** Nginx in a throwaway prefix serving `site`, in front of a one-line app. */
async function serve(
  site: (listen: string, upstreamFile: string, accessLog: string) => string,
): Promise<{ port: number; stop: () => void; accessLog: () => string }> {
  const dir = tempDir("nodescale-limits-");
  // Nginx's workers run as nobody under root: they must be able to look into the folder (`if (-f ...)`).
  chmodSync(dir, 0o755);
  for (const sub of ["logs", "tmp"]) mkdirSync(join(dir, sub));
  const appPort = await freePort();
  const port = await freePort();
  const app: ChildProcess = spawn(
    process.execPath,
    [
      "-e",
      `require("http").createServer((q, s) => { s.setHeader("x-app-saw-request-id", q.headers["x-request-id"] || ""); s.setHeader("x-app-saw-proto", q.headers["x-forwarded-proto"] || ""); s.end("ok"); }).listen(${appPort}, "127.0.0.1")`,
    ],
    { stdio: "ignore" },
  );
  const upstream = join(dir, "upstream.conf");
  writeFileSync(upstream, `server 127.0.0.1:${appPort};\n`);
  const accessLog = join(dir, "logs", "access.log");
  writeFileSync(join(dir, "site.conf"), site(`127.0.0.1:${port}`, upstream, accessLog));
  writeFileSync(join(dir, "nginx.conf"), renderNginxMain({ prefix: dir, siteFile: join(dir, "site.conf") }));
  const args = ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "logs", "error.log")];
  const started = spawnSync("nginx", args, { encoding: "utf8" });
  if (started.status !== 0) throw new Error(`nginx did not start: ${started.stderr}`);
  // Both up before the first request (a loaded machine starts node slower than Nginx).
  await waitFor("the app and Nginx to listen", async () =>
    (await listening("127.0.0.1", appPort)) && (await listening("127.0.0.1", port)) ? true : undefined,
  );
  return {
    port,
    stop: () => {
      spawnSync("nginx", [...args, "-s", "stop"]);
      app.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    // Nginx writes its buffered log at a graceful stop or within a second; reopen flushes it now.
    accessLog: () => {
      spawnSync("nginx", [...args, "-s", "reopen"]);
      spawnSync("sleep", ["0.3"]);
      return existsSync(accessLog) ? readFileSync(accessLog, "utf8") : "";
    },
  };
}

describe("per-client limits at the edge", () => {
  it("render as request and connection zones keyed by the client, answering 429 with Retry-After, and pass nginx -t", () => {
    const text = renderNginxSite(spec, cluster, { listen: ["80"], accessLog: "off", upstreamFile: NGINX_TEST_UPSTREAM });
    expect(text).toContain("limit_req_zone $binary_remote_addr zone=nodescale_orders_api_requests:10m rate=1r/s;");
    expect(text).toContain(
      "    limit_req zone=nodescale_orders_api_requests burst=4 nodelay;\n    limit_conn nodescale_orders_api_connections 50;",
    );
    expect(text).toContain(`        add_header Retry-After ${RETRY_AFTER_SECONDS} always;`);
    expect(nginxTest(text).status).toBe(0);
    const behind = renderNginxSite(spec, cluster, {
      listen: ["80"],
      behindLoadBalancer: true,
      accessLog: "off",
      upstreamFile: NGINX_TEST_UPSTREAM,
    });
    expect(behind).toContain("limit_req_zone $nodescale_orders_api_client zone=nodescale_orders_api_requests:10m rate=1r/s;");
    expect(nginxTest(behind).status).toBe(0);
    const off = renderNginxSite(spec, cluster, {
      listen: ["80"],
      clientLimits: false,
      accessLog: "off",
      upstreamFile: NGINX_TEST_UPSTREAM,
    });
    expect(off).not.toContain("limit_req");
    const lb = renderLoadBalancerSite(spec, {
      listen: ["127.0.0.1:8080"],
      machines: 2,
      upstreamFile: NGINX_TEST_UPSTREAM,
      accessLog: "off",
    });
    expect(lb).toContain("limit_req zone=nodescale_orders_api_requests burst=4 nodelay;");
    expect(nginxTest(lb, "server 127.0.1.1:8080;\n").status).toBe(0);
  });

  it("refuses a burst over the limit with 429 and Retry-After while another client is served", async () => {
    const nginx = await serve((listen, upstreamFile) =>
      renderNginxSite(spec, cluster, { listen: [listen], accessLog: "off", upstreamFile }),
    );
    try {
      const burst = await Promise.all(Array.from({ length: 12 }, () => get(nginx.port)));
      const refused = burst.filter((a) => a.status === 429);
      // 1 + burst (4) pass at once (a sixth if a second went by meanwhile); the rest are refused and say when to come back.
      const served = burst.filter((a) => a.status === 200).length;
      expect(served).toBeGreaterThanOrEqual(5);
      expect(served).toBeLessThanOrEqual(6);
      expect(refused.length).toBe(12 - served);
      expect(refused[0]).toEqual({ status: 429, retryAfter: "1", body: "too many requests from your address; retry after 1 s\n" });
      // Another address is its own client.
      expect((await get(nginx.port, { localAddress: "127.0.0.2" })).status).toBe(200);
    } finally {
      nginx.stop();
    }
  });

  it("behind a load balancer, counts the address the balancer appended, which a client cannot forge", async () => {
    const nginx = await serve((listen, upstreamFile) =>
      renderNginxSite(spec, cluster, { listen: [listen], behindLoadBalancer: true, accessLog: "off", upstreamFile }),
    );
    try {
      // One client behind the balancer (the same appended address), forging a different first entry each time.
      const forged = await Promise.all(Array.from({ length: 12 }, (_, i) => get(nginx.port, { forwardedFor: `10.9.9.${i}, 203.0.113.7` })));
      expect(forged.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(6);
      // Another client through the same balancer connection address is served.
      expect((await get(nginx.port, { forwardedFor: "198.51.100.20" })).status).toBe(200);
    } finally {
      nginx.stop();
    }
  });
});

describe("a site that answers only its domain (behind a load balancer)", () => {
  const domainSpec = NodeServiceSpec.parse({ name: "orders-api", port: 4000, workers: 2, domain: "orders.example.com" });
  const site = (listen: string, upstreamFile: string) =>
    renderNginxSite(domainSpec, cluster, {
      listen: [`${listen} default_server`],
      onlyHost: "orders.example.com",
      accessLog: "off",
      upstreamFile,
    });

  it("passes nginx -t with the catch-all as the default server", () => {
    const text = site("80", NGINX_TEST_UPSTREAM);
    expect(text).toContain("    listen 80;\n    server_name orders.example.com;");
    expect(text).toContain("    listen 80 default_server;\n    server_name _;");
    expect(nginxTest(text).status).toBe(0);
  });

  it("serves the domain, refuses any other Host with 421, and still answers the balancer's ready check by address", async () => {
    const nginx = await serve(site);
    try {
      expect(await get(nginx.port, { host: "orders.example.com" })).toMatchObject({ status: 200, body: "ok" });
      expect(await get(nginx.port, { host: "evil.example" })).toMatchObject({ status: 421, body: "unknown host\n" });
      expect(await get(nginx.port, { host: "10.0.1.7" })).toMatchObject({ status: 421 });
      expect(await get(nginx.port, { host: "10.0.1.7", path: "/ready" })).toMatchObject({ status: 200, body: "ok" });
    } finally {
      nginx.stop();
    }
  });
});

describe("one request id, end to end", () => {
  it("passes a client's id through (or makes one), to the app and back, and logs it in a JSON access line", async () => {
    const nginx = await serve((listen, upstreamFile, accessLog) =>
      renderNginxSite(spec, cluster, { listen: [listen], clientLimits: false, accessLog, upstreamFile }),
    );
    try {
      const given = await get(nginx.port, { requestId: "checkout-7f3a.1" });
      expect(given).toMatchObject({ status: 200, requestId: "checkout-7f3a.1", appSaw: "checkout-7f3a.1" });
      const made = await get(nginx.port);
      expect(made.requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(made.appSaw).toBe(made.requestId);
      // Not a plain token: replaced, never copied into headers or logs.
      const odd = await get(nginx.port, { requestId: 'x", "status": 200' });
      expect(odd.requestId).toMatch(/^[0-9a-f]{32}$/);
      const lines = nginx
        .accessLog()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => l.request_id)).toEqual(["checkout-7f3a.1", made.requestId, odd.requestId]);
      expect(lines[0]).toMatchObject({ method: "GET", uri: "/", status: 200, upstream_status: "200" });
      expect(typeof lines[0].request_time).toBe("number");
    } finally {
      nginx.stop();
    }
  });
});

describe("metrics and Nginx's own counters stay off the public listener", () => {
  it("answers 404 for /metrics without asking the app, and serves stub_status on loopback only", async () => {
    const statusPort = await freePort();
    const nginx = await serve((listen, upstreamFile) =>
      renderNginxSite(spec, cluster, {
        listen: [listen],
        accessLog: "off",
        upstreamFile,
        clientLimits: false,
        statusListen: `127.0.0.1:${statusPort}`,
      }),
    );
    try {
      for (const path of [
        "/metrics",
        "/metrics/",
        "/metrics/x",
        "/Metrics",
        "/METRICS",
        "/mEtRiCs/",
        "/%6Detrics",
        "/%4Detrics",
        "//metrics",
      ]) {
        const answer = await get(nginx.port, { path });
        expect([path, answer.status, answer.appSaw]).toEqual([path, 404, undefined]);
      }
      // A path that only starts like it is the app's.
      expect(await get(nginx.port, { path: "/metricsx" })).toMatchObject({ status: 200, body: "ok" });
      // On the public listener the path is the app's like any other: Nginx's counters are not there.
      expect(await get(nginx.port, { path: "/nginx_status" })).toMatchObject({ status: 200, body: "ok" });
      const status = await get(statusPort, { path: "/nginx_status" });
      expect(status.status).toBe(200);
      expect(status.body).toMatch(/^Active connections: \d+/);
      expect((await get(statusPort, { path: "/" })).status).toBe(404);
    } finally {
      nginx.stop();
    }
  });

  it("refuses a status listener that is not loopback", () => {
    expect(() =>
      renderNginxSite(spec, cluster, { listen: ["80"], accessLog: "off", upstreamFile: NGINX_TEST_UPSTREAM, statusListen: "0.0.0.0:8090" }),
    ).toThrow('statusListen: "0.0.0.0:8090" must be a loopback address and port, such as 127.0.0.1:8090');
  });
});

/** One GET on a keep-alive agent's socket; resolves with the status and the answer's Connection header. */
function keepAliveGet(port: number, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("keep-alive off before a reload (the machine agent's file beside the upstream file)", () => {
  const lbSpec = NodeServiceSpec.parse({ name: "orders-api", port: 4000 });
  it.each([
    [
      "a machine's site",
      (listen: string, upstreamFile: string) => renderNginxSite(lbSpec, cluster, { listen: [listen], accessLog: "off", upstreamFile }),
    ],
    [
      "the local load balancer",
      (listen: string, upstreamFile: string) =>
        renderLoadBalancerSite(lbSpec, { listen: [listen], machines: 2, accessLog: "off", upstreamFile }),
    ],
  ])("%s: answers say Connection: close while the file exists, still proxied; keep-alive again once it is gone", async (_, site) => {
    let upstream = "";
    const nginx = await serve((listen, upstreamFile) => {
      upstream = upstreamFile;
      return site(listen, upstreamFile);
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const off = keepAliveOffFile(upstream);
      expect(off).toBe(`${upstream}.keepalive-off`);
      expect(await keepAliveGet(nginx.port, agent)).toEqual({ status: 200, connection: "keep-alive", body: "ok" });
      writeFileSync(off, "");
      expect(await keepAliveGet(nginx.port, agent)).toEqual({ status: 200, connection: "close", body: "ok" });
      rmSync(off);
      expect(await keepAliveGet(nginx.port, agent)).toEqual({ status: 200, connection: "keep-alive", body: "ok" });
    } finally {
      agent.destroy();
      nginx.stop();
    }
  });
});

describe("X-Forwarded-Proto behind a TLS-ending load balancer", () => {
  const behind = (balancerCidrs?: readonly string[]) => (listen: string, upstreamFile: string) =>
    renderNginxSite(spec, cluster, {
      listen: [listen],
      behindLoadBalancer: true,
      clientLimits: false,
      accessLog: "off",
      upstreamFile,
      ...(balancerCidrs ? { balancerCidrs } : {}),
    });

  it("passes the balancer's https to the app from the balancer's addresses only; anyone else gets this hop's scheme", async () => {
    // The balancer is 127.0.0.1 here; 127.0.0.2 is a client that reached the machine some other way.
    const nginx = await serve(behind(["127.0.0.1/32"]));
    try {
      expect((await get(nginx.port, { forwardedProto: "https" })).appSawProto).toBe("https");
      expect((await get(nginx.port, { forwardedProto: "http" })).appSawProto).toBe("http");
      expect((await get(nginx.port, {})).appSawProto).toBe("http");
      expect((await get(nginx.port, { forwardedProto: "https", localAddress: "127.0.0.2" })).appSawProto).toBe("http");
      // Only the two schemes pass, even from the balancer.
      expect((await get(nginx.port, { forwardedProto: "gopher" })).appSawProto).toBe("http");
    } finally {
      nginx.stop();
    }
  });

  it("without balancer addresses, the app sees this hop's scheme whatever a client sends; a bad CIDR is refused", async () => {
    const nginx = await serve(behind());
    try {
      expect((await get(nginx.port, { forwardedProto: "https" })).appSawProto).toBe("http");
    } finally {
      nginx.stop();
    }
    expect(() => behind(["10.0.0.0/33"])("80", NGINX_TEST_UPSTREAM)).toThrow(
      'balancerCidrs: "10.0.0.0/33" is not a CIDR such as 10.30.0.0/16',
    );
  });
});
