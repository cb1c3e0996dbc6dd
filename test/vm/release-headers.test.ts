import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { templatePath } from "../../constructs/template";
import { freePort } from "../helpers/processes";

// The preload every VM process loads (PM2 node_args), run for real against a plain Node server on 127.0.0.1.
const PRELOAD = templatePath("vm/release-headers.cjs");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

function serve(port: number, handlesSignal: boolean, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const app = [
    `const server = require("node:http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1", () => console.log("up"));`,
    handlesSignal ? 'process.on("SIGINT", () => { console.log("app drains"); server.close(() => process.exit(0)); });' : "",
  ].join("\n");
  const child = spawn(process.execPath, [`--require=${PRELOAD}`, "-e", app], {
    env: { ...process.env, NODESCALE_RELEASE: "r-123", NODESCALE_MACHINE: "m7", ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve) => child.stdout?.once("data", () => resolve(child)));
}

function get(port: number, headers: Record<string, string> = {}): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/", headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.headers));
    })
      .on("error", reject)
      .end();
  });
}

const exitOf = (child: ChildProcess) =>
  new Promise<[number | null, string | null]>((resolve) => child.once("exit", (code, signal) => resolve([code, signal])));

describe("the release-headers preload", () => {
  it("names the process, host, release and machine in every answer of any app", async () => {
    const port = await freePort();
    const child = await serve(port, true);
    const headers = await get(port);
    expect(headers).toMatchObject({ "x-nodescale-pid": String(child.pid), "x-nodescale-release": "r-123", "x-nodescale-machine": "m7" });
    expect(headers["x-nodescale-host"]).toEqual(expect.any(String));
    expect(headers.connection).toBe("keep-alive");
  });

  it("sends HSTS, when told to, only on answers to requests that reached the proxy over HTTPS", async () => {
    const port = await freePort();
    await serve(port, true, { NODESCALE_HSTS_SECONDS: "63072000" });
    expect((await get(port, { "x-forwarded-proto": "https" }))["strict-transport-security"]).toBe("max-age=63072000");
    expect((await get(port, { "x-forwarded-proto": "http" }))["strict-transport-security"]).toBeUndefined();
    expect((await get(port))["strict-transport-security"]).toBeUndefined();
    const plain = await freePort();
    await serve(plain, true);
    expect((await get(plain, { "x-forwarded-proto": "https" }))["strict-transport-security"]).toBeUndefined();
  });

  it("leaves an app that ignores SIGINT with Node's default: it exits on the signal", async () => {
    const child = await serve(await freePort(), false);
    const exited = exitOf(child);
    child.kill("SIGINT");
    expect(await exited).toEqual([null, "SIGINT"]);
  });

  it("lets the app's own shutdown run, and answers during it with Connection: close", async () => {
    const port = await freePort();
    const child = await serve(port, true);
    const agent = new (require("node:http").Agent)({ keepAlive: true });
    // An idle keep-alive connection open when the signal comes: the app's server.close() would drop it at once.
    await new Promise((resolve) => request({ host: "127.0.0.1", port, path: "/", agent }, (res) => res.resume().on("end", resolve)).end());
    const exited = exitOf(child);
    child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const during = await new Promise<Record<string, unknown>>((resolve, reject) =>
      request({ host: "127.0.0.1", port, path: "/", agent }, (res) => res.resume().on("end", () => resolve(res.headers)))
        .on("error", reject)
        .end(),
    );
    expect(during.connection).toBe("close");
    expect(await exited).toEqual([0, null]);
    agent.destroy();
  });
});
