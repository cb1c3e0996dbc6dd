import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { join } from "node:path";
import { ensureLocalTls, localTlsFiles } from "../../constructs/vm/local-tls";
import { tempDir } from "../helpers/fixtures";
import { APP_DIST, freePort, get, killAll, ROOT, startNode, waitFor } from "../helpers/processes";

const CLI = join(ROOT, "dist", "health", "cli.js");

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (status) => resolve({ status, stdout, stderr }));
  });
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, port };
}

afterEach(killAll);

describe("health CLI", () => {
  it("passes a clustered app, counting the distinct processes that answered", async () => {
    const port = await freePort();
    startNode(join(APP_DIST, "cluster.js"), { PORT: String(port), WORKERS: "2" });
    await waitFor("the app", async () => ((await get(port, "/ready")).status === 200 ? true : undefined));
    const run = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-workers", "2"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^HEALTHY http://127\\.0\\.0\\.1:${port}: /health and /ready answered 200 after [\\d.]+ s\\n`));
    expect(run.stdout).toMatch(
      / {2}burst: 200 x 200; p50 [\d.]+ ms, p95 [\d.]+ ms; 2 distinct pid\(s\) \(expected 2\), 1 hostname\(s\), 1 machine\(s\)\n$/,
    );
  });

  it("fails when fewer processes or hosts answer than expected, and says how many did", async () => {
    const port = await freePort();
    startNode(join(APP_DIST, "main.js"), { PORT: String(port) });
    await waitFor("the app", async () => ((await get(port, "/ready")).status === 200 ? true : undefined));
    const workers = await runCli([
      "--url",
      `http://127.0.0.1:${port}`,
      "--expect-workers",
      "2",
      "--requests",
      "20",
      "--timeout",
      "3",
      "--json",
    ]);
    expect(workers.status).toBe(1);
    expect(JSON.parse(workers.stdout)).toMatchObject({
      healthy: false,
      problem: "only 1 distinct process(es) answered 20 requests; expected 2",
    });
    const hosts = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-hostnames", "3", "--requests", "20", "--timeout", "3"]);
    expect(hosts.status).toBe(1);
    expect(hosts.stdout).toMatch(
      /^UNHEALTHY http:\/\/127\.0\.0\.1:\d+: only 1 distinct host\(s\) answered 20 requests; expected 3 \(waited [\d.]+ s\)\n$/,
    );
  });

  it("waits with backoff, then fails in one line naming the URL, the last status and the time waited", async () => {
    const { server, port } = await listen((req, res) => {
      res.statusCode = req.url === "/ready" ? 503 : 200;
      res.end();
    });
    try {
      const run = await runCli(["--url", `http://127.0.0.1:${port}`, "--timeout", "2"]);
      expect(run.status).toBe(1);
      expect(run.stdout).toMatch(
        new RegExp(
          `^UNHEALTHY http://127\\.0\\.0\\.1:${port}: not healthy: http://127\\.0\\.0\\.1:${port}/ready answered 503 \\(waited [\\d.]+ s\\)\\n$`,
        ),
      );
    } finally {
      server.close();
    }
  });

  it("waits for the expected release and fails naming the one still answering", async () => {
    const port = await freePort();
    startNode(join(APP_DIST, "main.js"), { PORT: String(port), NODESCALE_RELEASE: "r-old" });
    await waitFor("the app", async () => ((await get(port, "/ready")).status === 200 ? true : undefined));
    const stale = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-release", "r-new", "--timeout", "1"]);
    expect(stale.status).toBe(1);
    expect(stale.stdout).toContain(`not healthy: http://127.0.0.1:${port}/ still serves release "r-old", expected "r-new"`);
    const current = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-release", "r-old", "--requests", "20", "--json"]);
    expect(current.status).toBe(0);
    expect(JSON.parse(current.stdout)).toMatchObject({ healthy: true, releases: { "r-old": 20 } });
  });

  it("counts the machines that answered and fails, after waiting, when one is missing", async () => {
    let n = 0;
    const { server, port } = await listen((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ pid: 1, machine: req.url === "/" ? `m${(n++ % 2) + 1}` : undefined }));
    });
    try {
      const two = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-machines", "2", "--requests", "20", "--json"]);
      expect(two.status).toBe(0);
      expect(JSON.parse(two.stdout)).toMatchObject({ healthy: true, distinctMachines: 2, expectMachines: 2 });
      const three = await runCli(["--url", `http://127.0.0.1:${port}`, "--expect-machines", "3", "--requests", "20", "--timeout", "3"]);
      expect(three.status).toBe(1);
      expect(three.stdout).toMatch(
        /^UNHEALTHY http:\/\/127\.0\.0\.1:\d+: only 2 distinct machine\(s\) answered 20 requests; expected 3 \(waited [\d.]+ s\)\n$/,
      );
    } finally {
      server.close();
    }
  });

  it("waits while a rollout still mixes releases, and passes once only the new one answers", async () => {
    const switchAt = Date.now() + 2_500;
    const { server, port } = await listen((req, res) => {
      // The single-request readiness probe sees the new release first, as it would through a load balancer.
      const release = req.url === "/" && Date.now() < switchAt && Math.random() < 0.5 ? "r-old" : "r-new";
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ pid: 1, release }));
    });
    try {
      const run = await runCli([
        "--url",
        `http://127.0.0.1:${port}`,
        "--expect-release",
        "r-new",
        "--requests",
        "50",
        "--timeout",
        "20",
        "--json",
      ]);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ healthy: true, releases: { "r-new": 50 } });
    } finally {
      server.close();
    }
  });

  it("names the connection error when nothing listens", async () => {
    const port = await freePort();
    const run = await runCli(["--url", `http://127.0.0.1:${port}`, "--timeout", "1"]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`not healthy: http://127.0.0.1:${port}/health: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it("fails the burst when the service answers errors after becoming ready", async () => {
    const { server, port } = await listen((req, res) => {
      res.statusCode = req.url === "/" ? 500 : 200;
      res.end("{}");
    });
    try {
      const run = await runCli(["--url", `http://127.0.0.1:${port}`, "--requests", "10", "--json"]);
      expect(run.status).toBe(1);
      expect(JSON.parse(run.stdout)).toMatchObject({
        problem: `10 of 10 burst requests to http://127.0.0.1:${port}/ failed (500)`,
        statusCounts: { 500: 10 },
      });
    } finally {
      server.close();
    }
  });

  it("checks an https service whose certificate a private CA signed, trusting that CA only when given --ca", async () => {
    const dir = tempDir("nodescale-health-tls-");
    const files = localTlsFiles(dir);
    ensureLocalTls(files, "health test");
    const port = await freePort();
    const server = createHttpsServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ pid: process.pid }));
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    try {
      const url = `https://127.0.0.1:${port}`;
      const trusted = await runCli(["--url", url, "--ca", files.caCert, "--requests", "10"]);
      expect(trusted.stdout).toContain(`HEALTHY ${url}: /health and /ready answered 200`);
      expect(trusted.status).toBe(0);
      const untrusted = await runCli(["--url", url, "--timeout", "1", "--json"]);
      expect(untrusted.status).toBe(1);
      expect(JSON.parse(untrusted.stdout).problem).toBe(`not healthy: ${url}/health: unable to verify the first certificate`);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("asks for the host given with --host, as a host rule behind a load balancer's own address needs", async () => {
    const { server, port } = await listen((req, res) => {
      res.statusCode = req.headers.host === "api.example.test" ? 200 : 421;
      res.end(JSON.stringify({ pid: process.pid }));
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      const asked = await runCli(["--url", url, "--host", "api.example.test", "--requests", "10"]);
      expect(asked.status).toBe(0);
      const plain = await runCli(["--url", url, "--timeout", "1", "--json"]);
      expect(JSON.parse(plain.stdout).problem).toBe(`not healthy: ${url}/health answered 421`);
    } finally {
      server.close();
    }
  });

  it("waits with --wait-for-machine until the balancer sends a request to that machine on that release, and only then", async () => {
    // A balancer in front of an old machine; the new one joins its rotation after a few requests, first on the old release.
    let served = 0;
    const { server, port } = await listen((_req, res) => {
      served += 1;
      const [machine, release] = served < 5 ? ["old-1", "r1"] : served < 9 ? ["new-2", "r1"] : ["new-2", "r2"];
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ machine, release }));
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      const joined = await runCli(["--url", url, "--wait-for-machine", "new-2", "--expect-release", "r2", "--timeout", "20"]);
      expect(joined.stdout).toMatch(new RegExp(`^IN ROTATION new-2 behind ${url} after [\\d.]+ s\n$`));
      expect(joined.status).toBe(0);
      expect(served).toBe(9);
      const never = await runCli(["--url", url, "--wait-for-machine", "new-3", "--timeout", "1"]);
      expect(never.stdout).toBe(`NOT IN ROTATION new-3 behind ${url} after 1 s (last answer 200 from "new-2")\n`);
      expect(never.status).toBe(1);
    } finally {
      server.close();
    }
  });

  it.each([
    [[], "nodescale-health: --url must be an http(s) URL, got null"],
    [["--url", "ftp://x"], 'nodescale-health: --url must be an http(s) URL, got "ftp://x"'],
    [["--url", "http://["], 'nodescale-health: --url must be an http(s) URL, got "http://["'],
    [
      ["--url", "http://127.0.0.1:1", "--ready-path", "//evil.example/ready"],
      'nodescale-health: --ready-path must be a path on the service\'s host such as "/ready", got "//evil.example/ready"',
    ],
    [
      ["--url", "http://127.0.0.1:1", "--health-path", "http://evil.example/health"],
      'nodescale-health: --health-path must be a path on the service\'s host such as "/ready", got "http://evil.example/health"',
    ],
    [
      ["--url", "https://127.0.0.1:1", "--ca", "/nonexistent/ca.pem"],
      'nodescale-health: --ca "/nonexistent/ca.pem" cannot be read: ENOENT',
    ],
    [
      ["--url", "http://127.0.0.1:1", "--ca", "/etc/hostname"],
      'nodescale-health: --ca applies to https URLs only, got "http://127.0.0.1:1"',
    ],
    [["--url", "http://127.0.0.1:1", "--host", "a b"], 'nodescale-health: --host must be a host name such as api.example.com, got "a b"'],
    [
      ["--url", "http://127.0.0.1:1", "--expect-workers", "two"],
      'nodescale-health: --expect-workers must be a whole number >= 1, got "two"',
    ],
  ])("refuses bad arguments %j with exit 2", async (args, message) => {
    const run = await runCli(args);
    expect(run.status).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe(message);
  });
});
