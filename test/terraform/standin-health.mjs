// The post-deploy health check's stand-in when a stack is applied against moto (a moto EC2 instance never boots,
// and its address is not ours to send traffic to). Run by the local-exec that the test's override file puts in place
// of the product's, as: node standin-health.mjs -- <the product's own health-check command>
//  1. reads the release the apply uploaded back from moto's S3 (NODESCALE_STANDIN_OBJECT, path-style URL) and checks
//     its SHA-256 against the release id the check expects (NODESCALE_RELEASE);
//  2. unpacks it and starts it on a free loopback port the way a machine runs it: NodeScale's preload
//     (release-headers.cjs, NODESCALE_STANDIN_PRELOAD) required first, NODESCALE_RELEASE set, WORKERS processes (the
//     app's own cluster primary stands in for PM2's cluster mode; Nginx is not in the path);
//  3. runs the product's command unchanged except NODESCALE_URL, which now names that server;
//  4. stops the server and removes the unpacked release, and exits with the check's status.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const command = process.argv.slice(process.argv.indexOf("--") + 1).join(" ");
const { NODESCALE_STANDIN_OBJECT: object, NODESCALE_STANDIN_PRELOAD: preload, NODESCALE_RELEASE: release } = process.env;
const workers = /--expect-workers (\d+)/.exec(command)?.[1] ?? "1";

const response = await fetch(object);
if (!response.ok) throw new Error(`stand-in: GET ${object} answered ${response.status}`);
const bytes = Buffer.from(await response.arrayBuffer());
const sha256 = createHash("sha256").update(bytes).digest("hex");
if (sha256 !== release) throw new Error(`stand-in: ${object} has SHA-256 ${sha256}, the check expects release ${release}`);

const dir = mkdtempSync(join(tmpdir(), "nodescale-standin-"));
writeFileSync(join(dir, "release.tar.gz"), bytes);
const untar = spawnSync("tar", ["-xzf", "release.tar.gz"], { cwd: dir, encoding: "utf8" });
if (untar.status !== 0) throw new Error(`stand-in: tar failed: ${untar.stderr}`);

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port: p } = s.address();
    s.close(() => resolve(p));
  });
});
const app = spawn(process.execPath, [`--require=${preload}`, join(dir, "dist", "cluster.js")], {
  cwd: dir,
  env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: String(port), WORKERS: workers, NODESCALE_RELEASE: release },
  stdio: ["ignore", "inherit", "inherit"],
  detached: true,
});
let status = 1;
try {
  const check = spawnSync("bash", ["-c", command], {
    env: { ...process.env, NODESCALE_URL: `http://127.0.0.1:${port}` },
    stdio: "inherit",
  });
  status = check.status ?? 1;
} finally {
  process.kill(-app.pid, "SIGTERM");
  await new Promise((resolve) => {
    if (app.exitCode !== null) resolve();
    app.once("exit", resolve);
    setTimeout(() => {
      try {
        process.kill(-app.pid, "SIGKILL");
      } catch {}
      resolve();
    }, 15_000).unref();
  });
  rmSync(dir, { recursive: true, force: true });
}
console.log(`stand-in: the release ${release} read back from moto's S3 answered the health check with exit ${status}`);
process.exit(status);
