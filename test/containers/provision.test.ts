import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Testing } from "../../constructs/cdk";
import { packRelease } from "../../constructs/release/release-pack";
import { NODE_RELEASES } from "../../constructs/service/node-releases";
import { gzippedScript } from "../../constructs/vm/droplet-common";
import { machineAgentSource } from "../../constructs/vm/machine-plan";
import { parseConfig } from "../../stacks/config";
import { VmPm2Stack } from "../../stacks/vm-pm2";
import { VmPm2DoStack } from "../../stacks/vm-pm2-do";
import { describeContainers, docker, dockerOk, since } from "../helpers/containers";
import { copySampleApp, tempDir } from "../helpers/fixtures";
import { failures, loadDuring } from "../helpers/load";
import { freePort, get, ROOT, sleep, waitFor } from "../helpers/processes";

const NODE = NODE_RELEASES[22].version;
const MIRROR_DIR = process.env.NODESCALE_NODE_MIRROR_DIR ?? "";
const EXTRA_CA = process.env.NODESCALE_EXTRA_CA ?? "";
const CA_IN_MACHINE = "/usr/local/share/ca-certificates/nodescale-test-extra.crt";
/** The loopback stand-in for the instance metadata service (IMDSv2) answers here. */
const IMDS_HOST = "127.0.0.2";

/**
 * A copy of the sample app packed as a release; `marker` makes another release of the same code, `firstLines`
 * is put before its entry point's code.
 */
function sampleRelease(marker = "", firstLines = "") {
  const appDir = copySampleApp(join(tempDir("nodescale-provision-app-"), "app"));
  if (marker) writeFileSync(join(appDir, "dist", "marker.txt"), marker);
  const main = join(appDir, "dist", "main.js");
  if (firstLines) writeFileSync(main, `${firstLines}\n${readFileSync(main, "utf8")}`);
  return packRelease({ appDir, cacheDir: join(ROOT, ".nodescale", "releases") });
}

/**
 * A release that passes the canary and fails after the switch: it refuses PM2's cluster mode, which the real
 * processes run in and the canary (one process, fork mode) does not. A real class of fault (code that is not
 * cluster-safe); the canary cannot catch it, the agent's roll back must.
 */
function clusterRefusingRelease() {
  return sampleRelease(
    "refuses cluster mode",
    // It says why, then exits (an exit in the same tick would lose the line: PM2's cluster mode ships output over IPC).
    `if (process.env.exec_mode === "cluster_mode") { console.error("this build cannot run in PM2 cluster mode"); setTimeout(() => process.exit(1), 200); return; }`,
  );
}

const short = (sha: string) => sha.slice(0, 12);

/** A loopback HTTP server; resolves with it and its port. */
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = "127.0.0.1",
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : 0 };
}

/** The machine: Debian with systemd as PID 1, on the host's network (apt and npm reach out; Nginx takes port 80). */
class Machine {
  constructor(readonly name: string) {}

  boot(): void {
    docker(["rm", "-f", this.name]);
    dockerOk([
      "run",
      "-d",
      "--name",
      this.name,
      "--network",
      "host",
      "--cap-add",
      "SYS_ADMIN",
      "--tmpfs",
      "/run",
      "--tmpfs",
      "/run/lock",
      "--tmpfs",
      "/tmp",
      "-v",
      "/sys/fs/cgroup:/sys/fs/cgroup:ro",
      "local/debian-systemd:bookworm",
    ]);
    this.waitForSystemd();
  }

  waitForSystemd(): void {
    for (let i = 0; i < 200; i++) {
      const state = docker(["exec", this.name, "systemctl", "is-system-running"]).stdout.trim();
      if (state === "running" || state === "degraded") return;
      spawnSleep(100);
    }
    throw new Error(`${this.name}: systemd did not finish booting`);
  }

  exec(args: string[], env: Record<string, string> = {}) {
    return docker(["exec", ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]), this.name, ...args]);
  }

  sh(command: string): string {
    const run = this.exec(["bash", "-c", command]);
    if (run.status !== 0) throw new Error(`${this.name}: ${command} failed (${run.status}):\n${run.stdout}${run.stderr}`);
    return run.stdout.trim();
  }

  write(path: string, content: string, mode = "0644"): void {
    const run = docker(["exec", "-i", this.name, "bash", "-c", `install -D -m ${mode} /dev/stdin ${path}`], content);
    if (run.status !== 0) throw new Error(`${this.name}: cannot write ${path}: ${run.stderr}`);
  }

  /**
   * Runs a command in the machine without blocking this process (the stand-ins it talks to are served from here);
   * its exit status, output, and how long it took.
   */
  run(command: string): Promise<{ status: number | null; output: string; seconds: number }> {
    const started = performance.now();
    return new Promise((resolve) => {
      const child = spawn("docker", ["exec", this.name, "bash", "-c", command]);
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("close", (status) => resolve({ status, output, seconds: since(started) }));
    });
  }

  /** Runs the provision script as cloud-init would (as root). */
  provision(script: string): Promise<{ status: number | null; output: string; seconds: number }> {
    return this.run(`bash ${script}`);
  }

  /** PIDs of the app's processes under PM2, and of Nginx's master. */
  pids(): { app: string[]; nginx: string } {
    return {
      app: this.sh("runuser -u nodescale -- env PM2_HOME=/var/lib/nodescale/.pm2 /usr/local/bin/pm2 pid")
        .split(/\s+/)
        .filter(Boolean)
        .sort(),
      nginx: this.sh("cat /run/nginx.pid"),
    };
  }

  /** What to read when a run failed: PM2's log, the app's output, the units' journal. */
  diagnostics(): string {
    return this.exec([
      "bash",
      "-c",
      "tail -n 60 /var/lib/nodescale/.pm2/pm2.log /var/log/nodescale/*.log 2>&1; journalctl --no-pager -n 60 -u nodescale-pm2 2>&1",
    ]).stdout;
  }

  remove(): void {
    docker(["rm", "-f", this.name]);
  }
}

function spawnSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The test-only change to a rendered script: the stand-in Node.js archive is not nodejs.org's, so its checksum
 * differs. A gzipped script (a Droplet's) is unpacked, changed and packed again the same way.
 */
function withMirrorChecksum(script: string): string {
  const packed = /<<'NODESCALE_GZIP' \| gunzip > \S+\n([\s\S]*?)\nNODESCALE_GZIP/.exec(script)?.[1];
  if (packed !== undefined) {
    const inner = gunzipSync(Buffer.from(packed.replace(/\n/g, ""), "base64")).toString("utf8");
    return gzippedScript(withMirrorChecksum(inner));
  }
  const archive = readFileSync(join(MIRROR_DIR, `v${NODE}`, `node-v${NODE}-linux-x64.tar.xz`));
  const sha = createHash("sha256").update(archive).digest("hex");
  const pinned = /^readonly NODE_SHA256="[0-9a-f]{64}"$/m;
  if (!pinned.test(script)) throw new Error("the rendered script has no pinned NODE_SHA256 line");
  return script.replace(pinned, `readonly NODE_SHA256="${sha}"`);
}

/** The machine answers through its Nginx on port 80 with this release. */
async function servesRelease(release: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `release ${release.slice(0, 12)} through Nginx`,
    async () => {
      const answer = await get(80, "/", 2_000).catch(() => undefined);
      return answer?.status === 200 && answer.json().release === release ? true : undefined;
    },
    timeoutMs,
  );
}

describeContainers("the provision script on a booted machine (systemd as PID 1 in a Debian container)", () => {
  let mirror: { server: Server; port: number };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    mirror = await serve((req, res) => {
      const file = join(MIRROR_DIR, (req.url ?? "").replace(/\?.*$/, ""));
      if (!file.startsWith(MIRROR_DIR) || req.method !== "GET") return void res.writeHead(404).end();
      try {
        const data = readFileSync(file);
        res.writeHead(200, { "content-length": data.length }).end(data);
      } catch {
        res.writeHead(404).end();
      }
    });
  });

  afterAll(() => {
    mirror.server.close();
    console.log(`provision timings (s): ${JSON.stringify(timings)}`);
  });

  describe("DigitalOcean: the Droplet's user data, release inline (installed from its lock file on the machine)", () => {
    const machine = new Machine(`nodescale-droplet-${process.pid}`);
    let release = "";

    beforeAll(async () => {
      // The machine shares this host's network with whatever else runs here (CI runs npm test beside): its app and
      // metrics ports are ones free now, not the defaults another program may hold.
      const ports = { port: await freePort(), metricsPort: await freePort() };
      machine.boot();
      machine.write(CA_IN_MACHINE, readFileSync(EXTRA_CA, "utf8"));
      // The machine's extra CA for npm (this network re-signs TLS), where the boot re-run also reads it.
      machine.write("/etc/nodescale/provision.env", `export NODE_EXTRA_CA_CERTS=${CA_IN_MACHINE}\n`);
      const stack = new VmPm2DoStack(Testing.app(), "vm-pm2-do", {
        loaded: parseConfig({ service: ports, vm: { nodeMirror: `http://127.0.0.1:${mirror.port}` } }),
        bundle: sampleRelease(),
      });
      const synth = JSON.parse(Testing.synth(stack));
      const droplet = Object.values(synth.resource.digitalocean_droplet)[0] as { user_data: string };
      // Terraform's template escapes ($${, %%{) undone, as Terraform sends the user data.
      const script = droplet.user_data.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{");
      machine.write("/var/lib/cloud/user-data.sh", withMirrorChecksum(script), "0700");
      release = stack.host?.userData.release.sha256 ?? "";
      expect(stack.host?.userData.release.files).toContain(".nodescale-npm-ci");
    }, 120_000);

    afterAll(() => machine.remove());

    it("first run: waits for apt's lock held by another process, then brings Nginx and PM2 up under systemd", async () => {
      // Another apt user (unattended-upgrades at first boot) holds dpkg's lock for 20 s: the run waits, not fails.
      const holder = machine.run(
        `python3 -c 'import fcntl, time; f = open("/var/lib/dpkg/lock-frontend", "w"); fcntl.lockf(f, fcntl.LOCK_EX); open("/run/lock-held", "w").close(); time.sleep(20)'`,
      );
      await waitFor("the lock to be held", () => (machine.exec(["test", "-f", "/run/lock-held"]).status === 0 ? true : undefined));
      const run = await machine.provision("/var/lib/cloud/user-data.sh");
      await holder;
      if (run.status !== 0) console.log(`${machine.name} after a failed run:\n${machine.diagnostics()}`);
      expect(run.output).toMatch(/Waiting for cache lock|Could not get lock/);
      timings.dropletFirstRun = run.seconds;
      expect([run.status, run.output.slice(-3000)]).toEqual([0, expect.stringContaining("nodescale-provision: done")]);
      expect(run.output).toContain("installing its locked dependencies (npm ci --omit=dev --ignore-scripts)");
      expect(machine.sh("systemctl is-active nginx nodescale-pm2 && systemctl is-enabled nodescale-pm2")).toBe("active\nactive\nenabled");
      await servesRelease(release);
      // Node.js from the mirror, unpacked beside and linked.
      expect(machine.sh("readlink /usr/local/bin/node; readlink /opt/nodescale/node/current; /usr/local/bin/node --version")).toBe(
        `/opt/nodescale/node/current/bin/node\nv${NODE}\nv${NODE}`,
      );
    }, 600_000);

    it("second run: changes nothing (same processes, same Nginx master)", async () => {
      const before = machine.pids();
      const run = await machine.provision("/opt/nodescale/bin/provision.sh");
      timings.dropletSecondRun = run.seconds;
      expect(run.status).toBe(0);
      expect(machine.pids()).toEqual(before);
      expect(run.output).not.toMatch(/apt-get|Unpacking|npm ci/);
      // The only PM2 daemon is the app user's, under systemd: checking PM2's version started none as root.
      // (Read from /proc: the image has no ps. `God D"aemon` keeps this script's own command line from matching.)
      const daemons = machine.sh(
        `for d in /proc/[0-9]*; do c="$(tr '\\0' ' ' < "$d/cmdline" 2>/dev/null || true)"; case "$c" in *"God D"aemon*) echo "$(stat -c %U "$d") $(echo "$c" | awk '{print $NF}')";; esac; done`,
      );
      expect(daemons).toBe("nodescale (/var/lib/nodescale/.pm2)");
    }, 300_000);

    it("rotates PM2's own log with the app's (PM2 never rotates its daemon log)", () => {
      machine.sh("test -s /var/lib/nodescale/.pm2/pm2.log");
      machine.sh("logrotate -f /etc/logrotate.d/nodescale");
      expect(machine.sh("ls /var/lib/nodescale/.pm2/ | grep -c '^pm2.log.1'")).toBe("1");
    });

    it("a full disk never leaves a truncated Nginx site: the write fails, the site in place stays whole and serving", async () => {
      const site = "/etc/nginx/sites-available/hello-node.conf";
      const before = machine.sh(`cat ${site}`);
      // The site's folder on a tiny file system that is then filled up; the plan asks for a changed site.
      machine.sh(
        [
          "cp -a /etc/nginx/sites-available /root/sites-backup",
          "mount -t tmpfs -o size=64k tmpfs /etc/nginx/sites-available",
          "cp -a /root/sites-backup/. /etc/nginx/sites-available/",
          "dd if=/dev/zero of=/etc/nginx/sites-available/filler bs=1k count=1000 2>/dev/null || true",
          "cp /opt/nodescale/plan.json /root/plan.json",
          "sed -i 's/client_max_body_size 10m;/client_max_body_size 11m;/' /opt/nodescale/plan.json",
        ].join(" && "),
      );
      try {
        const current = machine.sh("basename $(readlink /opt/nodescale/current)");
        const run = await machine.run(
          `node /opt/nodescale/bin/machine-agent.js deploy /opt/nodescale/plan.json --bundle /opt/nodescale/bundles/${current}.tar.gz --sha256 ${current}`,
        );
        expect(run.status).toBe(1);
        expect(run.output).toContain(`cannot write ${site} (ENOSPC); the previous version is left in place`);
        expect(machine.sh(`cat ${site}`)).toBe(before);
        // No half-written copy left beside it.
        expect(machine.sh("ls /etc/nginx/sites-available")).not.toContain("nodescale-tmp");
        expect(machine.exec(["nginx", "-t", "-q"]).status).toBe(0);
        await servesRelease(release);
      } finally {
        machine.sh("umount /etc/nginx/sites-available && mv -f /root/plan.json /opt/nodescale/plan.json");
      }
    }, 120_000);

    it("a run that cannot get the provisioning lock gives up after its timeout, saying so", async () => {
      const holder = machine.run("exec 9>/var/lock/nodescale-provision.lock; flock 9; touch /run/provision-lock-held; sleep 15");
      await waitFor("the lock to be held", () =>
        machine.exec(["test", "-f", "/run/provision-lock-held"]).status === 0 ? true : undefined,
      );
      const run = await machine.run("NODESCALE_PROVISION_LOCK_SECONDS=2 /opt/nodescale/bin/provision.sh");
      expect(run.status).toBe(75);
      expect(run.output).toContain("another provisioning run has held the lock for 2 s; giving up (the next run retries)");
      await holder;
    }, 60_000);

    it("a reboot brings the service back with no help", async () => {
      const started = performance.now();
      dockerOk(["restart", "-t", "30", machine.name]);
      await servesRelease(release, 120_000);
      timings.dropletRestartToHealthy = since(started);
      // The service answers before `pm2 resurrect` (the unit's start) has returned on a busy machine.
      await waitFor(
        "both units active",
        () => (machine.exec(["systemctl", "is-active", "nginx", "nodescale-pm2"]).stdout === "active\nactive\n" ? true : undefined),
        60_000,
      );
    }, 180_000);

    it("a release that fails after the switch rolls the machine back: the deploy fails naming why, the previous release serves", async () => {
      const bad = clusterRefusingRelease();
      const file = join(tempDir("nodescale-provision-bad-"), "bad.tar.gz");
      writeFileSync(file, bad.data);
      dockerOk(["cp", file, `${machine.name}:/opt/nodescale/bundles/${bad.sha256}.tar.gz`]);
      const run = await machine.run(
        `node /opt/nodescale/bin/machine-agent.js deploy /opt/nodescale/plan.json --bundle /opt/nodescale/bundles/${bad.sha256}.tar.gz --sha256 ${bad.sha256}`,
      );
      expect(run.status).toBe(1);
      expect(run.output).toContain(`canary of release ${short(bad.sha256)} ready on port`);
      expect(run.output).toContain(`the machine was rolled back to release ${short(release)}`);
      // The reason, in the processes' own words.
      expect(run.output).toContain("this build cannot run in PM2 cluster mode");
      expect(machine.sh("basename $(readlink /opt/nodescale/current)")).toBe(release);
      await servesRelease(release);
      // PM2's saved list (what a reboot resurrects) names only the proven release.
      const dump = machine.sh("cat /var/lib/nodescale/.pm2/dump.pm2");
      expect(dump).toContain(release);
      expect(dump).not.toContain(bad.sha256);
    }, 300_000);

    it("a reboot after a deploy that failed after the switch brings back the previous, proven release", async () => {
      dockerOk(["restart", "-t", "30", machine.name]);
      await servesRelease(release, 120_000);
      await waitFor(
        "both units active",
        () => (machine.exec(["systemctl", "is-active", "nginx", "nodescale-pm2"]).stdout === "active\nactive\n" ? true : undefined),
        60_000,
      );
      const releases = machine
        .sh(
          'runuser -u nodescale -- env PM2_HOME=/var/lib/nodescale/.pm2 /usr/local/bin/pm2 jlist | node -e \'const t = require("fs").readFileSync(0, "utf8"); for (const p of JSON.parse(t.slice(t.indexOf("[")))) console.log(p.pm2_env.status, p.pm2_env.NODESCALE_RELEASE)\'',
        )
        .split("\n");
      expect(releases).toEqual([`online ${release}`, `online ${release}`]);
    }, 240_000);

    it("systemd heals a killed PM2 daemon (with its apps) and a killed Nginx", async () => {
      const before = machine.pids();
      machine.sh("systemctl kill -s KILL nodescale-pm2.service");
      await sleep(500);
      await servesRelease(release, 60_000);
      expect(machine.pids().app).not.toEqual(before.app);
      machine.sh("systemctl kill -s KILL nginx.service");
      await sleep(500);
      await servesRelease(release, 60_000);
      expect(machine.pids().nginx).not.toBe(before.nginx);
    }, 180_000);
  });

  describe("AWS: the EC2 user data, with stand-ins for the instance metadata (IMDSv2) and S3", () => {
    const machine = new Machine(`nodescale-ec2-${process.pid}`);
    const objects = new Map<string, Buffer>();
    const tags = new Map<string, string>();
    let imds: { server: Server; port: number };
    let s3: { server: Server; port: number };
    let first = { sha256: "" };
    let rollout = "";
    const BUCKET = "nodescale-test-releases";

    beforeAll(async () => {
      const token = "imdsv2-token";
      imds = await serve((req, res) => {
        if (req.method === "PUT" && req.url === "/latest/api/token") return void res.writeHead(200).end(token);
        // IMDSv2 only: a request without the session token is refused, as on a machine with IMDSv1 off.
        if (req.headers["x-aws-ec2-metadata-token"] !== token) return void res.writeHead(401).end();
        const tag = /^\/latest\/meta-data\/tags\/instance\/([A-Za-z0-9]+)$/.exec(req.url ?? "")?.[1];
        const value = tag !== undefined ? tags.get(tag) : undefined;
        if (value === undefined) return void res.writeHead(404).end();
        res.writeHead(200).end(value);
        // The stand-in sits on a loopback address of its own (the app answers Nginx on 127.0.0.1), which the PM2
        // unit then denies, as it denies 169.254.169.254 on EC2.
      }, IMDS_HOST);
      s3 = await serve((req, res) => {
        // Path-style, as the AWS CLI addresses an IP endpoint: /<bucket>/<key>.
        const key = decodeURIComponent((req.url ?? "").replace(/\?.*$/, "")).replace(`/${BUCKET}/`, "");
        const data = objects.get(key);
        if (data === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
          return void res.writeHead(404, { "content-type": "application/xml" }).end("<Error><Code>NoSuchKey</Code></Error>");
        }
        const etag = `"${createHash("md5").update(data).digest("hex")}"`;
        res.writeHead(200, {
          "content-length": data.length,
          etag,
          "last-modified": new Date(0).toUTCString(),
          "content-type": "application/octet-stream",
        });
        res.end(req.method === "HEAD" ? undefined : data);
      });

      machine.boot();
      machine.write(CA_IN_MACHINE, readFileSync(EXTRA_CA, "utf8"));
      machine.write(
        "/etc/nodescale/provision.env",
        [
          `export NODE_EXTRA_CA_CERTS=${CA_IN_MACHINE}`,
          `export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://${IMDS_HOST}:${imds.port}`,
          `export AWS_ENDPOINT_URL_S3=http://127.0.0.1:${s3.port}`,
          // The instance role's credentials come from IMDS on EC2; the stand-in S3 checks none.
          "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1",
          "",
        ].join("\n"),
      );

      const bundle = sampleRelease();
      first = bundle;
      const ports = { port: await freePort(), metricsPort: await freePort() };
      const stack = new VmPm2Stack(Testing.app(), "vm-pm2", {
        loaded: parseConfig({
          // The load generator is one client address; behind the ALB a real service's load comes from many, so the
          // per-client limit (which would answer it 429 by design) is raised out of the way of the rollout's load.
          service: { ...ports, clientLimits: { requestsPerSecond: 100_000, burst: 100_000, connections: 10_000 } },
          vm: { nodeMirror: `http://127.0.0.1:${mirror.port}` },
        }),
        bundle,
      });
      const synth = JSON.parse(Testing.synth(stack));
      const instance = Object.values(synth.resource.aws_instance)[0] as { user_data_base64: string };
      const script = gunzipSync(Buffer.from(instance.user_data_base64, "base64")).toString("utf8");
      machine.write("/var/lib/cloud/user-data.sh", withMirrorChecksum(script), "0700");
      // What Terraform would have put in the bucket and on the instance's tags.
      objects.set(`releases/${bundle.sha256}.tar.gz`, bundle.data);
      const agent = Object.values(synth.resource.aws_s3_object).find((o) => String((o as { key: string }).key).startsWith("machine/")) as {
        key: string;
      };
      objects.set(agent.key, Buffer.from(machineAgentSource()));
      tags.set("NodeScaleBucket", BUCKET);
      tags.set("NodeScaleBundle", `s3://${BUCKET}/releases/${bundle.sha256}.tar.gz`);
      tags.set("NodeScaleBundleSha256", bundle.sha256);
      const association = Object.values(synth.resource.aws_ssm_association ?? {})[0] as { parameters: { commands: string } } | undefined;
      rollout = association?.parameters.commands ?? "";
    }, 180_000);

    afterAll(() => {
      machine.remove();
      imds.server.close();
      s3.server.close();
    });

    it("a first run cut short by a reboot is finished at the next boot, by the one-shot unit, with no help", async () => {
      let output = "";
      const child = spawn("docker", ["exec", machine.name, "bash", "/var/lib/cloud/user-data.sh"]);
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      // Cut it off after the packages, in the middle of the machine's setup.
      await waitFor("the run to reach Node.js", () => (output.includes("nodescale-provision: Node.js") ? true : undefined), 300_000);
      const started = performance.now();
      dockerOk(["restart", "-t", "0", machine.name]);
      expect(output).not.toContain("nodescale-provision: done");
      await servesRelease(first.sha256, 300_000);
      timings.ec2InterruptedToHealthy = since(started);
      machine.waitForSystemd();
      expect(machine.sh("test -f /opt/nodescale/provision-complete && systemctl show -p Result --value nodescale-provision.service")).toBe(
        "success",
      );
    }, 600_000);

    it("a full run from the instance tags (IMDSv2) and S3 changes nothing on a provisioned machine", async () => {
      const before = machine.pids();
      const run = await machine.provision("/var/lib/cloud/user-data.sh");
      timings.ec2SecondRun = run.seconds;
      expect([run.status, run.output.slice(-3000)]).toEqual([0, expect.stringContaining("nodescale-provision: done")]);
      expect(machine.pids()).toEqual(before);
      await servesRelease(first.sha256);
    }, 300_000);

    it("the app's processes cannot reach the metadata service (the PM2 unit's IPAddressDeny); root's provisioning can", async () => {
      // A process started by the unit's PM2 daemon, as the app's are, asks the stand-in for a token.
      const probe = [
        'const out = "/var/log/nodescale/imds-probe.txt";',
        'const write = (s) => require("node:fs").writeFileSync(out, s);',
        `fetch("http://${IMDS_HOST}:${imds.port}/latest/api/token", { method: "PUT", signal: AbortSignal.timeout(5000) })`,
        "  .then((r) => write(`answered ${r.status}`), (e) => write(`failed ${e.cause?.code ?? e.name}`));",
      ].join("\n");
      machine.write("/opt/nodescale/imds-probe.js", probe);
      const pm2 = "runuser -u nodescale -- env PM2_HOME=/var/lib/nodescale/.pm2 /usr/local/bin/pm2";
      machine.sh(`rm -f /var/log/nodescale/imds-probe.txt; ${pm2} start /opt/nodescale/imds-probe.js --name imds-probe --no-autorestart`);
      try {
        const verdict = await waitFor(
          "the probe's verdict",
          () => machine.exec(["cat", "/var/log/nodescale/imds-probe.txt"]).stdout || undefined,
          30_000,
        );
        // systemd's filter drops the unit's packets to a denied address: the connection fails (EPERM) or never
        // completes; without the deny the stand-in answers 200 (root's request below shows it is up).
        expect(verdict).toMatch(/^failed (EPERM|TimeoutError)$/);
      } finally {
        machine.sh(`${pm2} delete imds-probe`);
      }
      // Root, outside the unit, still reaches it (the provision script and the agent read the instance tags); run
      // without blocking this process, which serves the stand-in.
      const root = await machine.run(
        `curl -fsS --max-time 10 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://${IMDS_HOST}:${imds.port}/latest/api/token`,
      );
      expect([root.status, root.output]).toEqual([0, "imdsv2-token"]);
      // The deny as the machine has it: the unit's fixed addresses and the configured endpoint's, from the drop-in.
      expect(machine.sh("systemctl show -p IPAddressDeny --value nodescale-pm2.service").split(" ").sort()).toEqual(
        [`${IMDS_HOST}/32`, "169.254.169.254/32", "fd00:ec2::254/128"].sort(),
      );
    }, 120_000);

    it("a new release through the SSM rollout's command switches `current` with no failed request under load", async () => {
      expect(rollout).toMatch(/^NODESCALE_BUNDLE_URI=\S+ NODESCALE_BUNDLE_SHA256=[0-9a-f]{64} \/opt\/nodescale\/bin\/provision\.sh/);
      const next = sampleRelease("release two");
      objects.set(`releases/${next.sha256}.tar.gz`, next.data);
      // As hard as the generator goes: 16 connections (what one autocannon needs to saturate Nginx and PM2 here).
      const load = loadDuring("http://127.0.0.1/", 300, 16);
      await sleep(1_000);
      const started = performance.now();
      const run = await machine.run(
        `NODESCALE_BUNDLE_URI=s3://${BUCKET}/releases/${next.sha256}.tar.gz NODESCALE_BUNDLE_SHA256=${next.sha256} /opt/nodescale/bin/provision.sh`,
      );
      timings.ec2RolloutUnderLoad = since(started);
      await servesRelease(next.sha256);
      await sleep(1_000);
      const raw = await load.stop();
      const result = failures(raw);
      console.log(`EC2 rollout under load: ${JSON.stringify(result)}; rollout ${timings.ec2RolloutUnderLoad} s`);
      expect([run.status, run.output.slice(-2000)]).toEqual([0, expect.stringContaining("nodescale-provision: done")]);
      // A floor that means the whole rollout ran under real load: 200 requests for every second it took, at least.
      expect(result.sent).toBeGreaterThan(200 * timings.ec2RolloutUnderLoad);
      expect(result.failed).toBe(0);
      expect(machine.sh("basename $(readlink /opt/nodescale/current)")).toBe(next.sha256);
      // Old releases are pruned to the plan's count (3, the current one included).
      expect(Number(machine.sh("ls /opt/nodescale/releases | wc -l"))).toBeLessThanOrEqual(3);
    }, 300_000);
  });
});
