// The post-deploy health check's stand-in when a stack is applied against moto (a moto EC2 instance never boots,
// and its address is not ours to send traffic to). Run by the local-exec that the test's override file puts in place
// of the product's, as: node standin-health.mjs -- <the product's own health-check command>
//  1. reads the release the apply uploaded back from moto's S3 (NODESCALE_STANDIN_ENDPOINT, _BUCKET, _KEY; through
//     boto3 from moto's virtualenv, NODESCALE_STANDIN_PYTHON) and checks its SHA-256 against the release id the
//     check expects (NODESCALE_RELEASE);
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
const env = process.env;
const release = env.NODESCALE_RELEASE;
const workers = /--expect-workers (\d+)/.exec(command)?.[1] ?? "1";

// moto's S3 refuses an unsigned GET of a private object, as S3 does: boto3 (moto's virtualenv) signs the request.
const get = spawnSync(
  env.NODESCALE_STANDIN_PYTHON,
  [
    "-c",
    "import boto3, sys; sys.stdout.buffer.write(boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='moto', aws_secret_access_key='moto').get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())",
    env.NODESCALE_STANDIN_ENDPOINT,
    env.NODESCALE_STANDIN_BUCKET,
    env.NODESCALE_STANDIN_KEY,
  ],
  { maxBuffer: 512 * 1024 * 1024 },
);
const object = `s3://${env.NODESCALE_STANDIN_BUCKET}/${env.NODESCALE_STANDIN_KEY}`;
if (get.status !== 0) throw new Error(`stand-in: reading ${object} from moto failed: ${get.stderr}`);
const bytes = get.stdout;
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
const app = spawn(process.execPath, [`--require=${env.NODESCALE_STANDIN_PRELOAD}`, join(dir, "dist", "cluster.js")], {
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
