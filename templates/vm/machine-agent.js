#!/usr/bin/env node
// NodeScale machine agent: converges one machine (Nginx in front of PM2) to the plan NodeScale rendered for it.
// The same file runs on every simulated local machine and on every cloud VM; it needs only Node.js and PM2.
//
//   machine-agent.js deploy PLAN.json --bundle FILE --sha256 HEX [--restart] [--dry-run]
//   machine-agent.js stop PLAN.json
//
// deploy, in an order that keeps at least one ready process behind Nginx at every step:
//   1. unpack the release beside the others (verified SHA-256), without touching what runs;
//   2. repair drift: a dead PM2 daemon (and the orphans it left holding ports), a dead Nginx master (and its
//      orphaned workers);
//   3. start the new release once as a canary on a spare port; if it never answers the ready path, stop here:
//      nothing was switched, the machine keeps serving the previous release, and the deploy fails naming why;
//   4. the canary joins the Nginx upstream as a bridge, then `current` switches and PM2 converges app by app
//      (reload, scale, mode or port change); stale apps leave the upstream before they are stopped;
//   5. verify every process (count, release, ready on its port), then `pm2 save`, so a reboot resurrects only
//      a release that was proven ready.
"use strict";

const { spawnSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

class AgentError extends Error {}
/** How a secret stands in the ecosystem definition until writeEcosystem turns it into a process.env reference. */
const SECRET_MARK = "__NODESCALE_SECRET__:";
/** PM2 commands that read an ecosystem file, and so the secrets it refers to. */
const PM2_DEFINING = new Set(["start", "reload", "restart"]);

/**
 * How long answers say "Connection: close" before a client-facing Nginx reloads: every connection that is
 * sending requests gets one more answer in that time and is closed by Nginx after it, so the reload finds no
 * busy connection idle (an idle one it closes at once, racing a client that sends on it).
 */
const KEEPALIVE_OFF_BEFORE_RELOAD_MS = 1000;
/** Same name as constructs/vm/render.ts keepAliveOffFile: the site's `if (-f ...)` switches keep-alive off. */
const keepAliveOffFile = (upstreamFile) => `${upstreamFile}.keepalive-off`;

/**
 * The first folder on the way to `file` that others cannot search, when this agent runs as root (Nginx's workers
 * then run as an unprivileged user and stat() the file from a site's `if (-f ...)`).
 */
function unsearchableFolders(file) {
  if (process.getuid?.() !== 0) return undefined;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      if ((fs.statSync(dir).mode & 0o001) === 0) return dir;
    } catch {
      // A folder that does not exist yet is made by the agent, searchable.
    }
    if (dir === path.dirname(dir)) return undefined;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const short = (sha) => (sha ? String(sha).slice(0, 12) : "(none)");
/** The last lines of a finished command's output, for an error message. */
const outputTail = (run) => `${run.stdout ?? ""}${run.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");

function parseArgs(argv) {
  const [command, planFile, ...rest] = argv;
  const options = { restart: false, dryRun: false };
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--bundle") options.bundle = rest[++i];
    else if (rest[i] === "--sha256") options.sha256 = rest[++i];
    else if (rest[i] === "--restart") options.restart = true;
    else if (rest[i] === "--dry-run") options.dryRun = true;
    else throw new AgentError(`unknown argument ${JSON.stringify(rest[i])}`);
  }
  if (!["deploy", "stop"].includes(command) || !planFile) {
    throw new AgentError("usage: machine-agent.js deploy PLAN.json --bundle FILE --sha256 HEX [--restart] [--dry-run] | stop PLAN.json");
  }
  if (command === "deploy" && (!options.bundle || !/^[0-9a-f]{64}$/.test(options.sha256 ?? ""))) {
    throw new AgentError("deploy needs --bundle FILE and --sha256 with 64 hex digits");
  }
  return { command, planFile, options };
}

/**
 * A release holds regular files, folders and links that stay inside it; anything else is refused before it is used:
 * device files, FIFOs, sockets and hard links, a link that is absolute or leads out of the release, a top-level
 * `.npmrc` (npm would read it as project config; packRelease never ships one) and a `RELEASE` (the agent's own
 * mark). setuid, setgid and sticky bits are dropped. Throws AgentError naming the entry.
 */
function checkReleaseTree(root, release, prefix = "") {
  const refuse = (entry, why) => {
    throw new AgentError(`release ${release}: ${prefix}${entry} ${why}; refused (nothing changed)`);
  };
  if (prefix === "") {
    for (const name of [".npmrc", "RELEASE"]) if (fs.existsSync(path.join(root, name)) || isLink(path.join(root, name))) refuse(name, "must not be in a release");
  }
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const entry = rel ? `${rel}/${name}` : name;
      const full = path.join(root, entry);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(full);
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(entry), target));
        if (path.posix.isAbsolute(target) || resolved === ".." || resolved.startsWith("../")) refuse(entry, `is a link out of the release (to ${target})`);
        continue;
      }
      if (st.isDirectory()) {
        if (st.mode & 0o7000) fs.chmodSync(full, st.mode & 0o777);
        walk(entry);
        continue;
      }
      if (!st.isFile()) refuse(entry, "is not a regular file, folder or link");
      if (st.nlink > 1) refuse(entry, "is a hard link");
      if (st.mode & 0o7000) fs.chmodSync(full, st.mode & 0o777);
    }
  };
  walk("");
}

function isLink(file) {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Atomic write: a full disk or a crash never leaves a truncated config behind. Returns true when it changed. */
function writeIfChanged(file, content, mode = 0o644) {
  try {
    if (fs.readFileSync(file, "utf8") === content) return false;
  } catch {}
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.nodescale-tmp`;
  try {
    fs.writeFileSync(tmp, content, { mode });
  } catch (err) {
    // A full disk: the file in place stays whole; the partial copy goes.
    fs.rmSync(tmp, { force: true });
    throw new AgentError(`cannot write ${file} (${err.code ?? err.message}); the previous version is left in place`);
  }
  fs.renameSync(tmp, file);
  return true;
}

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== "EPERM") return false;
  }
  // A zombie (dead, not yet reaped by its parent) answers signal 0 but holds nothing.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

function readPid(file) {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Linux /proc facts about a process, or undefined where /proc does not exist (then nothing is swept). */
function procInfo(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    let environ = "";
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {}
    return { comm, ppid: Number(fields[1]), session: Number(fields[3]), environ };
  } catch {
    return undefined;
  }
}

function allPids() {
  try {
    return fs
      .readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

function killAll(pids, why, say) {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
      say(`killed ${why} (pid ${pid})`);
    } catch {}
  }
}

function readOr(file) {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** The upstream's `server` lines; one port is listed twice (Nginx retries only on another entry, and a PM2
 * cluster reload leaves live workers on the same port). */
function upstreamServers(host, ports) {
  const list = ports.length === 1 ? [ports[0], ports[0]] : ports;
  return `${list.map((p) => `server ${host}:${p} max_fails=0;`).join("\n")}\n`;
}

/** One GET on a fresh connection that closes after it: a pooled idle socket would keep a draining process waiting. */
function probe(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000, headers: { connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? undefined : `${url} answered ${res.statusCode}`));
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 2 s")));
    req.on("error", (err) => resolve(`${url}: ${err.code ?? err.message}`));
  });
}

/**
 * Polls `url` until it answers 200; returns why not when `seconds` ran out.
 * @param exited when given, says why the process being waited for is gone (then waiting is pointless).
 */
async function waitUntilReady(url, seconds, exited) {
  const started = Date.now();
  const deadline = started + seconds * 1000;
  let checked = started;
  for (;;) {
    const problem = await probe(url);
    if (problem === undefined) return undefined;
    // Asking PM2 costs a CLI start (~0.3 s): once a second is enough.
    const gone = exited !== undefined && Date.now() - checked >= 1000 ? ((checked = Date.now()), exited()) : undefined;
    if (gone !== undefined) return `${gone} after ${((Date.now() - started) / 1000).toFixed(1)}s (${problem})`;
    if (Date.now() > deadline) return `${problem} (waited ${seconds}s)`;
    await sleep(200);
  }
}

/** A loopback port nobody listens on at this moment, on the machine's own address. */
function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether host:port can be listened on now. */
function portFree(host, port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Who listens on a TCP port, read from /proc ("pid 123 (nginx: master process)"); undefined when it cannot tell. */
function portHolder(port) {
  const inodes = new Set();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (readOr(table) ?? "").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A" && Number.parseInt(f[1].split(":")[1], 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of allPids()) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = "";
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return `pid ${pid} (${(readOr(`/proc/${pid}/cmdline`) ?? "").split("\0").filter(Boolean).join(" ").slice(0, 80)})`;
    }
  }
  return undefined;
}

let rollingBack = false;

class Machine {
  constructor(plan, log) {
    this.plan = plan;
    this.log = log;
    this.base = plan.baseDir;
    this.pm2Home = plan.pm2?.home;
  }

  // ---------- PM2 ----------

  // ---------- secrets ----------

  /**
   * The service's secret values, from the plan's secrets file (0600, written by whoever fetched them: the provision
   * script on a VM, the local runner here). They reach PM2 only through the environment of its CLI, which evaluates
   * the ecosystem file's `process.env[...]` entries: no value is written into any file the agent writes.
   */
  secretValues() {
    if (this.secrets !== undefined) return this.secrets;
    const names = this.plan.secretNames ?? [];
    if (names.length === 0) return (this.secrets = {});
    let values;
    try {
      values = JSON.parse(fs.readFileSync(this.plan.secretsFile, "utf8"));
    } catch (err) {
      throw new AgentError(`the secrets file ${this.plan.secretsFile} cannot be read (${err.code ?? "not JSON"})`);
    }
    const missing = names.filter((n) => typeof values[n] !== "string");
    if (missing.length > 0) throw new AgentError(`the secrets file ${this.plan.secretsFile} lacks ${missing.join(", ")}`);
    this.secrets = Object.fromEntries(names.map((n) => [n, values[n]]));
    return this.secrets;
  }

  /** Text with every secret value replaced: what the agent says never carries one. */
  redact(text) {
    let out = String(text);
    for (const value of Object.values(this.secretValues())) if (value.length >= 4) out = out.split(value).join("<secret>");
    return out;
  }

  pm2Raw(args) {
    // Only the commands that (re)define processes see the secrets; the daemon itself (started by `ping` or systemd)
    // never holds them in its environment.
    const secrets = PM2_DEFINING.has(args[0]) ? this.secretValues() : {};
    const env = { ...process.env, ...secrets, PM2_HOME: this.pm2Home };
    const [cmd, argv] = this.plan.pm2.user
      ? ["runuser", ["-u", this.plan.pm2.user, "--", "env", `PM2_HOME=${this.pm2Home}`, this.plan.pm2.bin, ...args]]
      : [this.plan.pm2.bin, args];
    return spawnSync(cmd, argv, { env, encoding: "utf8", timeout: 600_000 });
  }

  pm2(...args) {
    const run = this.pm2Raw(args);
    if (run.status !== 0) {
      const out = this.redact(outputTail(run));
      throw new AgentError(`pm2 ${args.join(" ")} failed (exit ${run.status ?? run.signal}):\n${out}`);
    }
    return run.stdout;
  }

  daemonPid() {
    const pid = readPid(path.join(this.pm2Home, "pm2.pid"));
    return alive(pid) ? pid : undefined;
  }

  /** Processes PM2 started under this PM2_HOME that outlived their daemon (a kill -9 of PM2). */
  pm2Orphans() {
    const dir = path.join(this.pm2Home, "pids");
    let files = [];
    try {
      files = fs.readdirSync(dir).filter((f) => f.endsWith(".pid"));
    } catch {}
    const marker = `PM2_HOME=${this.pm2Home}\0`;
    return files
      .map((f) => readPid(path.join(dir, f)))
      .filter((pid) => alive(pid) && (procInfo(pid)?.environ ?? "").includes(marker));
  }

  /** The apps PM2 runs now, by name. Never starts a daemon. */
  running() {
    if (this.daemonPid() === undefined) return new Map();
    const out = this.pm2("jlist");
    const list = JSON.parse(out.slice(out.indexOf("[")));
    const apps = new Map();
    for (const p of list) {
      const env = { ...(p.pm2_env?.env ?? {}), ...p.pm2_env };
      const entry = apps.get(p.name) ?? [];
      entry.push({ pid: p.pid, status: p.pm2_env?.status, hash: env.NODESCALE_APP_HASH, release: env.NODESCALE_RELEASE, port: Number(env.PORT) });
      apps.set(p.name, entry);
    }
    return apps;
  }

  ensureDaemon() {
    if (this.daemonPid() !== undefined) return;
    killAll(this.pm2Orphans(), "an app process orphaned by a dead PM2 daemon", this.log);
    if (this.plan.pm2.systemdUnit) {
      run("systemctl", ["restart", this.plan.pm2.systemdUnit]);
    } else {
      this.pm2("ping");
    }
    if (this.daemonPid() === undefined) throw new AgentError("the PM2 daemon did not start");
    this.log("PM2 daemon started");
  }

  // ---------- Nginx ----------

  nginxArgs() {
    const n = this.plan.nginx;
    return ["-p", n.prefix, "-c", n.conf, "-e", path.join(n.prefix, "logs", "error.log")];
  }

  nginxMaster() {
    const pid = readPid(this.plan.nginx.pidFile);
    if (!alive(pid)) return undefined;
    const info = procInfo(pid);
    return info === undefined || info.comm.startsWith("nginx") ? pid : undefined;
  }

  nginxWorkers(master) {
    return allPids().filter((pid) => procInfo(pid)?.ppid === master);
  }

  /** Workers of a dead master keep its session id and may still hold the listening port. */
  sweepNginxOrphans() {
    const session = readPid(this.plan.nginx.pidFile);
    if (session === undefined) return;
    const orphans = allPids().filter((pid) => {
      const info = procInfo(pid);
      return info !== undefined && info.session === session && info.comm.startsWith("nginx");
    });
    killAll(orphans, "an Nginx worker orphaned by a dead master", this.log);
  }

  nginxTest() {
    const n = this.plan.nginx;
    if (n.kind === "prefix") {
      // A private prefix needs its log and temp folders; workers (nobody, when run as root) traverse them.
      for (const dir of ["logs", "tmp"]) fs.mkdirSync(path.join(n.prefix, dir), { recursive: true, mode: 0o755 });
    }
    const test = n.kind === "systemd" ? run("nginx", ["-t", "-q"]) : run("nginx", ["-t", "-q", ...this.nginxArgs()]);
    if (test.status !== 0) throw new AgentError(`the Nginx config failed 'nginx -t':\n${(test.stderr ?? "").trim()}`);
  }

  /**
   * Applies the written config: starts Nginx when it is down, else a graceful reload, and waits until every
   * old worker is gone, so that no request is routed by the previous upstream list after this returns.
   */
  async nginxApply() {
    const n = this.plan.nginx;
    this.nginxTest();
    if (n.kind === "systemd") {
      const active = run("systemctl", ["is-active", "--quiet", "nginx"]).status === 0;
      const before = this.nginxMaster();
      const old = before ? this.nginxWorkers(before) : [];
      const apply = async () => {
        const act = run("systemctl", [active ? "reload" : "restart", "nginx"]);
        if (act.status !== 0) throw new AgentError(`systemctl ${active ? "reload" : "restart"} nginx failed: ${act.stderr}`);
        await this.waitGone(old);
      };
      await (active ? this.withKeepAliveOff(apply) : apply());
      return;
    }
    const master = this.nginxMaster();
    if (master === undefined) {
      this.sweepNginxOrphans();
      const start = run("nginx", this.nginxArgs());
      if (start.status !== 0) throw new AgentError(`Nginx did not start: ${(start.stderr ?? "").trim()}`);
      this.log(`Nginx started on ${n.listen}`);
      return;
    }
    await this.withKeepAliveOff(async () => {
      const old = this.nginxWorkers(master);
      const reload = run("nginx", [...this.nginxArgs(), "-s", "reload"]);
      if (reload.status !== 0) throw new AgentError(`Nginx reload failed: ${(reload.stderr ?? "").trim()}`);
      await this.waitGone(old);
    });
  }

  /**
   * Runs a reload with keep-alive off on a client-facing Nginx: from a moment before it until the old workers
   * are gone (they close idle connections at once; a connection they serve is closed after its answer, which
   * then says so). Behind a load balancer the machine is out of rotation when it reloads: no client to spare.
   */
  async withKeepAliveOff(reload) {
    if (this.plan.clientFacing === false) return reload();
    const file = keepAliveOffFile(this.plan.nginx.upstreamFile);
    const blocked = unsearchableFolders(file);
    if (blocked !== undefined) {
      this.log(
        `note: Nginx's workers cannot look into ${blocked} (no search permission for others), so they cannot see ${path.basename(file)}: keep-alive stays on through this reload, and a client sending on an idle connection as it closes sees it reset.`,
      );
    }
    try {
      fs.writeFileSync(file, "");
      await sleep(KEEPALIVE_OFF_BEFORE_RELOAD_MS);
      await reload();
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  async waitGone(pids) {
    const deadline = Date.now() + (this.plan.drainSeconds + 5) * 1000;
    while (pids.some(alive)) {
      if (Date.now() > deadline) {
        this.log(`old Nginx workers still finishing requests after ${this.plan.drainSeconds + 5}s; going on`);
        return;
      }
      await sleep(50);
    }
  }

  /**
   * Takes the machine out of a load balancer's rotation the way deregistration does: Nginx stops accepting
   * (the balancer retries elsewhere), finishes the requests it has, then exits.
   */
  async nginxStop() {
    const master = this.nginxMaster();
    if (master === undefined) return;
    const workers = this.nginxWorkers(master);
    run("nginx", [...this.nginxArgs(), "-s", "quit"]);
    await this.waitGoneWithin([master, ...workers], (this.plan.drainSeconds + 5) * 1000);
    killAll([master, ...workers].filter(alive), "an Nginx process that did not finish draining", this.log);
  }

  writeUpstream(ports) {
    return writeIfChanged(this.plan.nginx.upstreamFile, `# Written by the NodeScale machine agent.\n${upstreamServers(this.plan.host, ports)}`);
  }

  // ---------- readiness ----------

  readyUrl(port) {
    return `http://${this.plan.host}:${port}${this.plan.readyPath}`;
  }

  waitReady(port, seconds, exited) {
    return waitUntilReady(this.readyUrl(port), seconds, exited);
  }

  // ---------- releases ----------

  installRelease(bundle, sha256) {
    const releases = path.join(this.base, "releases");
    const dir = path.join(releases, sha256);
    if (fs.existsSync(dir)) return dir;
    const data = fs.readFileSync(bundle);
    const actual = crypto.createHash("sha256").update(data).digest("hex");
    if (actual !== sha256) throw new AgentError(`bundle ${bundle} has SHA-256 ${actual}, expected ${sha256}: refusing it`);
    const partial = `${dir}.partial`;
    fs.rmSync(partial, { recursive: true, force: true });
    // Closed (0700) until every entry is checked: no one runs a file of it before its special bits are gone.
    // Whatever fails (a corrupt archive, a refused entry, npm, a full disk) leaves no half-unpacked folder behind.
    try {
      fs.mkdirSync(releases, { recursive: true, mode: 0o755 });
      fs.mkdirSync(partial, { mode: 0o700 });
      fs.chmodSync(partial, 0o700);
      const untar = spawnSync("tar", ["-xzf", bundle, "-C", partial, "--no-same-owner", "--no-same-permissions"], { encoding: "utf8" });
      if (untar.status !== 0) throw new AgentError(`cannot unpack ${bundle}: ${untar.stderr}`);
      checkReleaseTree(partial, short(sha256));
      if (fs.existsSync(path.join(partial, ".nodescale-npm-ci"))) {
        // A release that came without its dependencies (a Droplet's user data is too small for them): exactly the
        // locked versions, each checked against the lock file's integrity hash; no package's install scripts run.
        this.log(`release ${short(sha256)}: installing its locked dependencies (npm ci --omit=dev --ignore-scripts)`);
        this.installDependencies(partial, sha256);
        checkReleaseTree(path.join(partial, "node_modules"), short(sha256), "node_modules/");
      }
      // O_EXCL and O_NOFOLLOW: never through a link, never over a file the release brought.
      const fd = fs.openSync(
        path.join(partial, "RELEASE"),
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o644,
      );
      fs.writeSync(fd, `${sha256}\n`);
      fs.closeSync(fd);
      fs.chmodSync(partial, 0o755);
      fs.renameSync(partial, dir);
    } catch (err) {
      fs.rmSync(partial, { recursive: true, force: true });
      throw err;
    }
    this.log(`release ${short(sha256)} unpacked`);
    return dir;
  }

  /**
   * npm ci for a release, as the app's user (root never runs npm on a release), in a folder of its own that holds
   * only package.json and the lock file: no project .npmrc exists there, and no user's config is read
   * (--userconfig=/dev/null, npm_config_* dropped); only the machine's global npm config applies. The installed
   * node_modules then moves into the release and becomes root's, read-only to the app like the rest.
   */
  installDependencies(partial, sha256) {
    const user = this.plan.pm2?.user;
    const stage = `${partial}.npm`;
    fs.rmSync(stage, { recursive: true, force: true });
    fs.mkdirSync(stage, { mode: 0o700 });
    try {
      for (const f of ["package.json", "package-lock.json"]) {
        if (fs.existsSync(path.join(partial, f))) fs.copyFileSync(path.join(partial, f), path.join(stage, f));
      }
      if (user) runOk("chown", ["-R", `${user}:`, stage]);
      const nodeBin = path.dirname(process.execPath);
      const keep = ["NODE_EXTRA_CA_CERTS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"];
      const env = {
        ...Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])),
        HOME: stage,
        NODE_ENV: "production",
        PATH: `${nodeBin}:/usr/local/bin:/usr/bin:/bin`,
        npm_config_cache: path.join(stage, ".npm-cache"),
        npm_config_update_notifier: "false",
      };
      const npm = [path.join(nodeBin, "npm"), "ci", "--omit=dev", "--ignore-scripts", "--userconfig=/dev/null", "--no-audit", "--no-fund", "--loglevel=error"];
      const [cmd, argv] = user
        ? ["runuser", ["-u", user, "--", "env", "-i", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...npm]]
        : [npm[0], npm.slice(1)];
      // runuser itself (root) gets only a PATH to be found by; env -i gives npm the clean environment above.
      const install = spawnSync(cmd, argv, {
        cwd: stage,
        encoding: "utf8",
        timeout: 600_000,
        env: user ? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } : env,
      });
      if (install.status !== 0) {
        const why = install.error ? install.error.message : outputTail(install);
        throw new AgentError(`release ${short(sha256)}: npm ci failed (exit ${install.status}): ${why}`);
      }
      fs.rmSync(path.join(partial, "node_modules"), { recursive: true, force: true });
      fs.renameSync(path.join(stage, "node_modules"), path.join(partial, "node_modules"));
      if (user) runOk("chown", ["-R", "--no-dereference", "0:0", path.join(partial, "node_modules")]);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }

  currentRelease() {
    try {
      return path.basename(fs.readlinkSync(path.join(this.base, "current")));
    } catch {
      return undefined;
    }
  }

  switchCurrent(sha256) {
    const link = path.join(this.base, "current");
    const tmp = `${link}.nodescale-tmp`;
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(path.join("releases", sha256), tmp);
    fs.renameSync(tmp, link);
  }

  pruneReleases(keep) {
    const dir = path.join(this.base, "releases");
    const current = this.currentRelease();
    const entries = fs
      .readdirSync(dir)
      .filter((e) => /^[0-9a-f]{64}$/.test(e) && e !== current)
      .map((e) => ({ e, t: fs.statSync(path.join(dir, e)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const { e } of entries.slice(Math.max(0, keep - 1))) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }

  // ---------- the plan's apps ----------

  /** The apps as PM2 runs them, with the release and a fingerprint of each definition in its environment. */
  desiredApps(sha256) {
    const secrets = this.secretValues();
    // A changed secret value changes the fingerprint (so the processes reload) without the value entering any file.
    const secretDigest = crypto.createHash("sha256").update(JSON.stringify(Object.entries(secrets).sort())).digest("hex");
    const marks = Object.fromEntries(Object.keys(secrets).map((name) => [name, `${SECRET_MARK}${name}`]));
    return this.plan.apps.map((app) => {
      const env = { ...app.env, ...marks, NODESCALE_RELEASE: sha256 };
      const definition = { ...app, env };
      const hash = crypto.createHash("sha256").update(JSON.stringify(definition)).update(secretDigest).digest("hex").slice(0, 16);
      return { ...definition, env: { ...env, NODESCALE_APP_HASH: hash } };
    });
  }

  instancesOf(app) {
    return app.instances === "max" ? os.availableParallelism() : app.instances;
  }

  appPorts(app) {
    return [Number(app.env.PORT)];
  }

  /** What deploy would change; empty when the machine already runs the plan. */
  changes(desired, running, sha256) {
    const changes = [];
    if (this.currentRelease() !== sha256) changes.push(`release ${short(this.currentRelease())} -> ${short(sha256)}`);
    for (const app of desired) {
      const procs = running.get(app.name) ?? [];
      const want = this.instancesOf(app);
      if (procs.length === 0) changes.push(`start ${app.name}`);
      else if (procs.some((p) => p.hash !== app.env.NODESCALE_APP_HASH)) changes.push(`reload ${app.name}`);
      else if (procs.some((p) => p.status !== "online")) changes.push(`repair ${app.name}`);
      if (procs.length > 0 && procs.length !== want) changes.push(`scale ${app.name} ${procs.length} -> ${want}`);
    }
    for (const name of running.keys()) if (!desired.some((a) => a.name === name)) changes.push(`remove ${name}`);
    return changes;
  }

  async verify(desired, sha256) {
    const running = this.running();
    for (const app of desired) {
      const procs = running.get(app.name) ?? [];
      const want = this.instancesOf(app);
      const good = procs.filter((p) => p.status === "online" && p.release === sha256);
      if (good.length !== want) {
        // The processes' own last words say why (a port taken, a crash at start), as the canary's do.
        throw new AgentError(
          `${app.name}: ${good.length} of ${want} process(es) online on release ${short(sha256)} (PM2 reports ${procs.map((p) => p.status).join(", ") || "none"}). Their output:\n${this.redact(this.tailLogs(app))}`,
        );
      }
      for (const port of this.appPorts(app)) {
        const problem = await this.waitReady(port, this.plan.readyTimeoutSeconds);
        if (problem !== undefined) throw new AgentError(`${app.name} is not ready: ${problem}`);
      }
    }
  }

  /**
   * An app none of whose processes is online (a crash loop: PM2 reports them "waiting restart" or "errored") serves
   * nothing, so nothing is lost by replacing it whole; and a reload would race PM2's own pending restarts, which
   * start a process again on its old definition ("Process with pid ... already exists"), leaving it on the release
   * that crashed. It is deleted here, and the caller starts it from the ecosystem file. Returns the processes left.
   */
  startFreshIfNoneOnline(app, procs) {
    if (procs.length === 0 || procs.some((p) => p.status === "online")) return procs;
    this.log(`${app.name}: no process online (PM2 reports ${procs.map((p) => p.status).join(", ")}); replacing it whole`);
    this.pm2("delete", app.name);
    return [];
  }

  writeEcosystem(file, apps) {
    // A secret is written as a reference to the PM2 CLI's environment, which the agent fills (pm2Raw).
    const text = JSON.stringify({ apps }, null, 2).replace(/"__NODESCALE_SECRET__:([A-Za-z_][A-Za-z0-9_]*)"/g, (_, name) => `process.env[${JSON.stringify(name)}]`);
    return writeIfChanged(file, `// Written by the NodeScale machine agent. Do not edit: redeploy instead.\nmodule.exports = ${text};\n`);
  }

  canaryApp(template, sha256, port) {
    const current = path.join(this.base, "current");
    const release = path.join(this.base, "releases", sha256);
    const swap = (p) => (p.startsWith(current) ? release + p.slice(current.length) : p);
    const name = `${this.plan.service}-canary`;
    return {
      ...template,
      name,
      script: swap(template.script),
      cwd: swap(template.cwd),
      exec_mode: "fork",
      instances: 1,
      autorestart: false,
      out_file: path.join(this.plan.logDir, `${name}.out.log`),
      error_file: path.join(this.plan.logDir, `${name}.err.log`),
      env: { ...template.env, PORT: String(port) },
    };
  }

  tailLogs(app) {
    const lines = [];
    for (const file of [app.out_file, app.error_file]) {
      try {
        lines.push(...fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-10));
      } catch {}
    }
    return lines.length ? lines.map((l) => `    ${l}`).join("\n") : "    (no output)";
  }

  // ---------- commands ----------

  /** Everything deploy would do, in words; empty when the machine runs the plan already. Changes nothing. */
  pending(sha256) {
    const plan = this.plan;
    const changes = this.changes(this.desiredApps(sha256), this.running(), sha256);
    if (plan.nginx.kind === "prefix" && this.nginxMaster() === undefined) changes.push("start Nginx");
    for (const f of plan.files) {
      let now;
      try {
        now = fs.readFileSync(f.path, "utf8");
      } catch {}
      if (now !== f.content) changes.push(`write ${f.path}`);
    }
    return changes;
  }

  /**
   * @param drain when given (a machine behind a load balancer), called once the canary has proven the release
   * and before anything that serves is touched: the caller takes the machine out of rotation, the agent
   * converges it directly and starts Nginx again at the end.
   */
  async deploy({ bundle, sha256, restart, dryRun, drain }) {
    const plan = this.plan;
    if (dryRun) {
      console.log(JSON.stringify({ changes: this.pending(sha256) }));
      return;
    }
    fs.mkdirSync(this.base, { recursive: true });
    fs.mkdirSync(plan.logDir, { recursive: true });
    const desired = this.desiredApps(sha256);

    this.installRelease(bundle, sha256);
    // Every process of every release loads it (NODE_OPTIONS), so it is in place before the first one starts.
    if (plan.preload) writeIfChanged(plan.preload.path, plan.preload.content, 0o644);
    this.ensureDaemon();
    // The plan's files are written only once the release has passed its gate: a refused release must leave
    // nothing behind that a later Nginx restart or PM2 reload would pick up.
    const filesChanged = plan.files.some((f) => readOr(f.path) !== f.content);
    const writeFiles = () => {
      for (const f of plan.files) writeIfChanged(f.path, f.content, f.mode ?? 0o644);
      this.writeEcosystem(ecosystem, desired);
    };
    const ecosystem = path.join(this.base, "ecosystem.config.js");

    const running = this.running();
    const changes = this.changes(desired, running, sha256);
    const nginxDown = plan.nginx.kind === "prefix" ? this.nginxMaster() === undefined : false;
    if (changes.length === 0 && !restart) {
      writeFiles();
      const upstreamChanged = this.writeUpstream(plan.ports);
      if ((filesChanged || upstreamChanged) && drain && !nginxDown) await drain();
      if (filesChanged || nginxDown || upstreamChanged) await this.nginxApply();
      await this.verify(desired, sha256);
      this.log(`up to date on release ${short(sha256)}${filesChanged ? " (Nginx config applied)" : ""}`);
      return;
    }
    this.log(`${restart && changes.length === 0 ? "rolling restart" : changes.join("; ")}`);

    // A port the new definition needs that another program holds: every process would exit at start (EADDRINUSE)
    // after the switch, in a crash loop PM2's cluster mode logs no reason for. Refused here, before anything changes.
    const ours = new Set([...running.values()].flat().map((p) => p.port));
    for (const port of new Set(desired.flatMap((a) => this.appPorts(a)))) {
      if (ours.has(port) || (await portFree(plan.host, port))) continue;
      throw new AgentError(
        `port ${port} on ${plan.host} is in use by ${portHolder(port) ?? "another program"}, not by this service: release ${short(sha256)} cannot start there; nothing was switched, the machine keeps serving release ${short(this.currentRelease())}`,
      );
    }
    // The gate: the new definition must answer ready once before anything that serves traffic is touched.
    const canaryPort = await freePort(plan.host);
    const canary = this.canaryApp(desired[0], sha256, canaryPort);
    const canaryFile = path.join(this.base, "canary.config.js");
    this.writeEcosystem(canaryFile, [canary]);
    this.pm2Raw(["delete", canary.name]);
    for (const f of [canary.out_file, canary.error_file]) fs.rmSync(f, { force: true });
    this.pm2("start", canaryFile);
    const problem = await this.waitReady(canaryPort, plan.readyTimeoutSeconds, () => {
      const [proc] = this.running().get(canary.name) ?? [];
      return proc === undefined || ["stopped", "errored"].includes(proc.status) ? "the process exited" : undefined;
    });
    if (problem !== undefined) {
      const output = this.redact(this.tailLogs(canary));
      this.pm2Raw(["delete", canary.name]);
      throw new AgentError(
        `release ${short(sha256)} did not become ready: ${problem}; nothing was switched, the machine keeps serving release ${short(this.currentRelease())}. Its output:\n${output}`,
      );
    }
    this.log(`canary of release ${short(sha256)} ready on port ${canaryPort}`);
    const previous = this.currentRelease();
    try {
      writeFiles();
    } catch (err) {
      // Nothing was switched: the canary goes, the machine keeps serving what it served.
      this.pm2Raw(["delete", canary.name]);
      throw err;
    }
    try {
      if (drain) {
        await drain();
        await this.convergeDrained(desired, running, sha256, ecosystem, restart);
      } else {
        await this.convergeLive(desired, running, sha256, ecosystem, restart, { canary, canaryPort, filesChanged, nginxDown });
      }
    } catch (err) {
      if (rollingBack || previous === undefined || previous === sha256 || !(err instanceof AgentError)) throw err;
      // Whatever failed after the switch, the machine goes back to the release it served before. The processes'
      // last output is read now, before the roll back's own processes write theirs.
      const why = / output:\n/.test(err.message) ? err.message : `${err.message}. The app's output:\n${this.redact(desired.map((a) => this.tailLogs(a)).join("\n"))}`;
      this.log(`${why}\nrolling back to release ${short(previous)}`);
      rollingBack = true;
      try {
        await this.deploy({ bundle, sha256: previous, restart: false, dryRun: false });
      } finally {
        rollingBack = false;
      }
      throw new AgentError(`${err.message}; the machine was rolled back to release ${short(previous)}`);
    }
  }

  async convergeLive(desired, running, sha256, ecosystem, restart, { canary, canaryPort, filesChanged, nginxDown }) {
    const plan = this.plan;

    try {
      const stale = [...running.keys()].filter((name) => name !== canary.name && !desired.some((a) => a.name === name));
      const servingPorts = [
        ...new Set(
          [...running.entries()]
            .filter(([name]) => name !== canary.name)
            .flatMap(([, procs]) => procs.filter((p) => p.status === "online").map((p) => p.port))
            .filter((p) => p > 0),
        ),
      ];
      const samePorts = servingPorts.length === plan.ports.length && servingPorts.every((p) => plan.ports.includes(p));
      // PM2 rolls a cluster worker by worker and fork mode goes port by port, so the processes carry the change
      // alone unless the ports move or a single fork process must restart; then the proven canary bridges it.
      const bridge = servingPorts.length > 0 && (!samePorts || (plan.mode === "fork" && plan.ports.length === 1));
      if (bridge) {
        if (plan.clientFacing) {
          this.log(
            `note: this change moves ports, so the client-facing Nginx reloads: answers say "Connection: close" for ${KEEPALIVE_OFF_BEFORE_RELOAD_MS / 1000}s before it, so no busy connection is closed under a client. Behind a load balancer (2+ machines) the machine is drained first instead.`,
          );
        }
        // Every port that serves now or will (a port change moves a cluster), and the canary.
        this.writeUpstream([...new Set([...plan.ports, ...servingPorts, canaryPort])]);
        await this.nginxApply();
      } else if (filesChanged || nginxDown) {
        if (filesChanged && plan.clientFacing && !nginxDown) {
          this.log('note: the Nginx config changed, so the client-facing Nginx reloads (keep-alive off first: answers say "Connection: close").');
        }
        this.writeUpstream(plan.ports);
        await this.nginxApply();
      }
      this.switchCurrent(sha256);

      for (const app of desired) {
        for (const port of this.appPorts(app)) {
          for (const name of stale.filter((n) => (running.get(n) ?? []).some((p) => p.port === port))) {
            this.log(`stopping ${name}: its port ${port} goes to ${app.name}`);
            this.pm2("delete", name);
            stale.splice(stale.indexOf(name), 1);
          }
        }
        const procs = this.startFreshIfNoneOnline(app, running.get(app.name) ?? []);
        const want = this.instancesOf(app);
        if (procs.length === 0) {
          this.pm2("start", ecosystem, "--only", app.name);
        } else if (restart || procs.some((p) => p.hash !== app.env.NODESCALE_APP_HASH || p.status !== "online")) {
          // cluster: one worker at a time, each replacement ready before its predecessor stops;
          // fork: a restart of this one port while the other ports and the bridge serve.
          this.pm2("reload", ecosystem, "--only", app.name, "--update-env");
        }
        if (procs.length > 0 && procs.length !== want) this.pm2("scale", app.name, String(want));
        for (const port of this.appPorts(app)) {
          const notReady = await this.waitReady(port, plan.readyTimeoutSeconds);
          if (notReady !== undefined) {
            throw new AgentError(`${app.name} did not become ready: ${notReady}. Its output:\n${this.redact(this.tailLogs(app))}`);
          }
        }
        running = this.running();
      }

      // Stale apps and the bridge leave the upstream before they stop, so Nginx sends them nothing new.
      if (this.writeUpstream(plan.ports)) await this.nginxApply();
      for (const name of stale) {
        this.pm2("delete", name);
        this.log(`removed ${name}`);
      }
      this.pm2Raw(["delete", canary.name]);
      await this.verify(desired, sha256);
    } catch (err) {
      this.pm2Raw(["delete", canary.name]);
      throw err;
    }
    this.pm2("save", "--force");
    this.pruneReleases(plan.keepReleases);
    this.log(`serving release ${short(sha256)} (${plan.mode} mode)`);
  }

  /**
   * The machine is out of rotation (its Nginx stopped by the caller): converge the processes directly, then
   * start Nginx on the final config. The canary has already proven the release.
   */
  async convergeDrained(desired, running, sha256, ecosystem, restart) {
    const canaryName = `${this.plan.service}-canary`;
    try {
      this.switchCurrent(sha256);
      for (const [name] of running) {
        if (!desired.some((a) => a.name === name)) this.pm2("delete", name);
      }
      for (const app of desired) {
        const procs = this.startFreshIfNoneOnline(app, running.get(app.name) ?? []);
        if (procs.length === 0) this.pm2("start", ecosystem, "--only", app.name);
        else if (restart || procs.some((p) => p.hash !== app.env.NODESCALE_APP_HASH || p.status !== "online")) {
          this.pm2("reload", ecosystem, "--only", app.name, "--update-env");
        }
        const want = this.instancesOf(app);
        if (procs.length > 0 && procs.length !== want) this.pm2("scale", app.name, String(want));
      }
      this.pm2Raw(["delete", canaryName]);
      await this.verify(desired, sha256);
      this.writeUpstream(this.plan.ports);
      await this.nginxApply();
    } catch (err) {
      this.pm2Raw(["delete", canaryName]);
      throw err;
    }
    this.pm2("save", "--force");
    this.pruneReleases(this.plan.keepReleases);
    this.log(`serving release ${short(sha256)} (${this.plan.mode} mode)`);
  }

  async stop() {
    const n = this.plan.nginx;
    if (n !== undefined && n.kind === "prefix") {
      const master = this.nginxMaster();
      if (master !== undefined) {
        run("nginx", [...this.nginxArgs(), "-s", "quit"]);
        const workers = this.nginxWorkers(master);
        await this.waitGoneWithin([master, ...workers], 10_000);
        killAll([master, ...workers].filter(alive), "an Nginx process that did not quit", this.log);
      }
      this.sweepNginxOrphans();
    }
    if (this.plan.pm2 === undefined) return;
    const daemon = this.daemonPid();
    if (daemon !== undefined) {
      this.pm2Raw(["kill"]);
      await this.waitGoneWithin([daemon], (this.plan.killTimeoutSeconds + 5) * 1000);
      killAll([daemon].filter(alive), "a PM2 daemon that did not exit", this.log);
    }
    killAll(this.pm2Orphans(), "an app process orphaned by a dead PM2 daemon", this.log);
  }

  async waitGoneWithin(pids, ms) {
    const deadline = Date.now() + ms;
    while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  }
}

function run(cmd, args) {
  return spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
}

function runOk(cmd, args) {
  const done = run(cmd, args);
  if (done.status !== 0) throw new AgentError(`${cmd} ${args.join(" ")} failed: ${outputTail(done)}`);
  return done;
}

async function main() {
  let planName = "machine";
  try {
    const { command, planFile, options } = parseArgs(process.argv.slice(2));
    const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
    planName = plan.machine;
    const machine = new Machine(plan, (message) => console.log(`nodescale-machine[${plan.machine}]: ${message}`));
    if (command === "stop") await machine.stop();
    else await machine.deploy(options);
  } catch (err) {
    if (!(err instanceof AgentError)) throw err;
    console.error(`nodescale-machine[${planName}]: ${err.message}`);
    process.exit(1);
  }
}

// Run as a command on a machine; required as a module by the local target, which drives several machines.
if (require.main === module) void main();
else module.exports = { Machine, AgentError, writeIfChanged, upstreamServers, waitUntilReady };
