import { chmodSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { IMAGE_USER, renderDockerfile, STAGED_DOCKERFILE } from "../../constructs/k8s/dockerfile";
import { resolveBuildScript, stageSources } from "../../constructs/release/release-pack";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { describeContainers, docker, dockerOk, extraCaBase64, NODE_IMAGE, since } from "../helpers/containers";
import { tempDir } from "../helpers/fixtures";
import { podRun, synthesizedPod } from "../helpers/pod-run";
import { freePort, get, ROOT, waitFor } from "../helpers/processes";

/** One GET that may take a while; resolves with the status (0 when the connection failed). */
function slowGet(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

const APPS = [
  { what: "the sample app", dir: join(ROOT, "app"), service: {}, slowPath: "/cpu?ms=1500", env: { CPU_ENDPOINT: "on" } },
  {
    what: "the Express fixture (your own service)",
    dir: join(ROOT, "test", "fixtures", "express-app"),
    service: { start: "server.js" },
    slowPath: "/slow?ms=1500",
    env: {},
  },
];

describeContainers.each(APPS)("the image of $what, run as a pod runs it", ({ what, dir, service, slowPath, env }) => {
  const spec = NodeServiceSpec.parse(service);
  const tag = `nodescale-test/${what.split(" ")[1].toLowerCase()}:${process.pid}`;
  // Run as the synthesized pod runs it: user, capabilities, read-only root, /tmp, the preload's ConfigMap, grace.
  const pod = podRun(synthesizedPod(service, tag));
  const grace = pod.graceSeconds;
  let port = 0;
  const name = `nodescale-image-${process.pid}-${what.length}`;

  afterAll(() => {
    docker(["rm", "-f", name]);
    docker(["image", "rm", "-f", tag]);
  });

  it("builds from the rendered Dockerfile on the locally built base, trusting the extra CA during the build only", () => {
    const ctx = tempDir("nodescale-image-ctx-");
    stageSources(dir, ctx);
    writeFileSync(join(ctx, STAGED_DOCKERFILE), renderDockerfile(spec, resolveBuildScript(dir, spec.build)));
    const started = performance.now();
    dockerOk([
      "build",
      "--network",
      "host",
      "-q",
      "-f",
      join(ctx, STAGED_DOCKERFILE),
      "--build-arg",
      `NODE_IMAGE=${NODE_IMAGE}`,
      "--build-arg",
      `EXTRA_CA_CERTS_BASE64=${extraCaBase64()}`,
      "-t",
      tag,
      ctx,
    ]);
    const bytes = Number(dockerOk(["image", "inspect", "-f", "{{.Size}}", tag]));
    console.log(`${what}: image built in ${since(started)} s, ${(bytes / 1024 / 1024).toFixed(1)} MiB`);
    // The CA file of the build stage is not in the image that ships.
    expect(
      docker([
        "run",
        "--rm",
        "--entrypoint",
        "node",
        tag,
        "-e",
        "process.exit(require('fs').existsSync('/tmp/nodescale-extra-ca.pem') ? 1 : 0)",
      ]).status,
    ).toBe(0);
  }, 600_000);

  it("answers /health, /ready and / as the pod runs it: its user, no capabilities, read-only root, no new privileges", async () => {
    port = await freePort();
    const appEnv = { ...spec.appEnv(spec.port, "0.0.0.0"), ...env };
    const mounts = Object.entries(pod.configMaps).flatMap(([path, files]) => {
      const dir = tempDir("nodescale-image-configmap-");
      // Readable by the pod's user, as a ConfigMap volume is (the folder is made private by mkdtemp).
      chmodSync(dir, 0o755);
      for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
      return ["-v", `${dir}:${path}:ro`];
    });
    const started = performance.now();
    dockerOk([
      "run",
      "-d",
      "--name",
      name,
      ...pod.flags,
      ...mounts,
      "-p",
      `127.0.0.1:${port}:${spec.port}`,
      ...Object.entries(appEnv).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      "--entrypoint",
      pod.entrypoint,
      tag,
      ...pod.args,
    ]);
    await waitFor(
      "the container to be ready",
      async () => ((await get(port, spec.readyPath).catch(() => undefined))?.status === 200 ? true : undefined),
      30_000,
    );
    console.log(`${what}: ready ${since(started)} s after docker run`);
    for (const path of [spec.healthPath, spec.readyPath, "/"]) expect([path, (await get(port, path)).status]).toEqual([path, 200]);
    expect(dockerOk(["exec", name, "id", "-u"])).toBe(String(IMAGE_USER));
    expect(pod.user).toBe(IMAGE_USER);
    // The code is root's: the app cannot change it; the root file system is read-only anyway.
    expect(docker(["exec", name, "sh", "-c", "touch /app/x"]).status).not.toBe(0);
  }, 60_000);

  it(`finishes a slow request in flight on docker stop and exits 0 within the pod's grace period (${grace} s)`, async () => {
    const inFlight = slowGet(port, slowPath);
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    // docker stop kills at the grace period: exit 0 means the app drained and exited before it.
    dockerOk(["stop", "-t", String(grace), name]);
    const stopSeconds = since(started);
    expect(await inFlight).toBe(200);
    expect(dockerOk(["inspect", "-f", "{{.State.ExitCode}}", name])).toBe("0");
    console.log(`${what}: docker stop took ${stopSeconds} s with a request in flight (grace ${grace} s), exit 0`);
  }, 60_000);
});
