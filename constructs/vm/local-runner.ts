// The local target's steps, run by Terraform's local-exec (apply, destroy) and by npm scripts (reload, down):
// `node dist/constructs/vm/local-runner.js apply|destroy|reload|down`. Each simulated machine is converged by
// the same machine agent a cloud VM runs; with several, the local load balancer drains each one first.
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { missingEnvSecretsMessage, readEnvSecrets, type SecretRef, shellOnlySecretsMessage } from "../service/secrets";
import { ensureLocalTls, type LocalTlsFiles } from "./local-tls";
import { type AgentMachine, machineAgent as agent } from "./machine-agent";
import type { MachineNginx, MachinePlan } from "./machine-plan";
import { LB_FAIL_TIMEOUT_SECONDS, renderMachineServers } from "./render";

/** What the LocalTarget construct renders for one apply; saved as deployment.json for reload and down. */
export interface LocalDeployment {
  readonly service: string;
  readonly dir: string;
  /** host:port the user reaches (the load balancer, or the single machine's Nginx). */
  readonly address: string;
  readonly readyPath: string;
  readonly machines: readonly { readonly name: string; readonly address: string; readonly plan: MachinePlan }[];
  readonly loadBalancer?: {
    readonly nginx: MachineNginx;
    readonly files: MachinePlan["files"];
    readonly drainSeconds: number;
  };
  /** The service's secrets, by reference (`env:` only here); the values are read from the runner's environment. */
  readonly secrets?: Readonly<Record<string, SecretRef>>;
  /** HTTPS on the client-facing Nginx: its certificate is made (or renewed) here, at apply time. */
  readonly tls?: {
    readonly files: LocalTlsFiles;
    /** Names the CA (the deployment's instance). */
    readonly label: string;
    /** host:port of the TLS listener. */
    readonly address: string;
    /** The Nginx site file that serves it. */
    readonly siteFile: string;
  };
}

/**
 * Writes each machine's secrets file (0600) from the deploying shell's environment, before anything changes; a
 * missing variable stops the deploy naming it. The values go nowhere else: not in the plan, the state or the output.
 */
function writeSecrets(deployment: LocalDeployment): void {
  const secrets = deployment.secrets ?? {};
  if (Object.keys(secrets).length === 0) return;
  const shellOnly = shellOnlySecretsMessage(secrets);
  if (shellOnly !== undefined) throw new RunnerError(shellOnly);
  const { values, missing } = readEnvSecrets(secrets, process.env);
  if (missing.length > 0) throw new RunnerError(missingEnvSecretsMessage(missing));
  // The shell's variables end here: nothing this runner starts (PM2's daemon, Nginx, the apps) inherits them; the
  // apps get the values under their own names, from PM2.
  for (const ref of Object.values(secrets)) if (ref.kind === "env") delete process.env[ref.variable];
  for (const { plan } of deployment.machines) {
    mkdirSync(dirname(plan.secretsFile), { recursive: true });
    const tmp = `${plan.secretsFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(values), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, plan.secretsFile);
  }
}

/**
 * Makes sure the local certificate exists and is not near expiry, and stamps its fingerprint into the site file that
 * serves it: a new certificate then changes that file, and the agent reloads Nginx gracefully, as for any change.
 */
function withCertificate(deployment: LocalDeployment): LocalDeployment {
  const tls = deployment.tls;
  if (tls === undefined) return deployment;
  const outcome = ensureLocalTls(tls.files, tls.label);
  const fingerprint = new X509Certificate(readFileSync(tls.files.cert)).fingerprint256;
  if (outcome !== "kept")
    say(
      `HTTPS on https://${tls.address}: ${outcome === "created" ? "created a local CA and" : "renewed"} its certificate; clients trust ${tls.files.caCert}`,
    );
  const stamp = (files: MachinePlan["files"]) =>
    files.map((f) => (f.path === tls.siteFile ? { ...f, content: `${f.content}# TLS certificate ${fingerprint}\n` } : f));
  return {
    ...deployment,
    machines: deployment.machines.map((m) => ({ ...m, plan: { ...m.plan, files: stamp(m.plan.files) } })),
    ...(deployment.loadBalancer ? { loadBalancer: { ...deployment.loadBalancer, files: stamp(deployment.loadBalancer.files) } } : {}),
  };
}

class RunnerError extends Error {}
const say = (message: string) => console.log(`nodescale local: ${message}`);
const NGINX_MISSING =
  "nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS).";

function machineAgent(plan: MachinePlan): AgentMachine {
  return new agent.Machine(plan, (message) => console.log(`nodescale-machine[${plan.machine}]: ${message}`));
}

function loadBalancer(deployment: LocalDeployment): AgentMachine | undefined {
  const lb = deployment.loadBalancer;
  if (lb === undefined) return undefined;
  return new agent.Machine({ machine: "load-balancer", nginx: lb.nginx, drainSeconds: lb.drainSeconds, files: lb.files }, (message) =>
    console.log(`nodescale local: load balancer: ${message}`),
  );
}

function listening(address: string): Promise<boolean> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function previousDeployment(dir: string): LocalDeployment | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "deployment.json"), "utf8")) as LocalDeployment;
  } catch {
    return undefined;
  }
}

/** Machines and the load balancer of a deployment folder, stopped with whatever crashed in between. */
async function down(dir: string): Promise<void> {
  const machinesDir = join(dir, "machines");
  const plans = existsSync(machinesDir)
    ? readdirSync(machinesDir)
        .map((m) => join(machinesDir, m, "plan.json"))
        .filter(existsSync)
    : [];
  const previous = previousDeployment(dir);
  const lb = previous ? loadBalancer(previous) : undefined;
  if (lb) await lb.stop();
  for (const file of plans) await machineAgent(JSON.parse(readFileSync(file, "utf8")) as MachinePlan).stop();
  rmSync(dir, { recursive: true, force: true });
  say(`stopped ${plans.length} machine(s)${lb ? " and the load balancer" : ""}`);
}

interface RolloutOptions {
  readonly bundle: string;
  readonly sha256: string;
  readonly restart: boolean;
}

/**
 * Converges every machine, one at a time. Behind the load balancer a machine with anything to change leaves
 * the rotation first: its Nginx stops accepting and finishes its in-flight requests (the balancer retries a
 * refused connection on another machine and skips this one), the machine converges, Nginx starts again and
 * the machine must answer ready through it before the next machine is touched. The balancer's own config is
 * not reloaded during a rollout: reloading the client-facing Nginx closes idle keep-alive connections.
 */
async function rollout(deployment: LocalDeployment, options: RolloutOptions): Promise<void> {
  const lb = loadBalancer(deployment);
  const addresses = deployment.machines.map((m) => m.address);
  // The balancer's config changes only with the machine list or its own settings: a reload of the
  // client-facing Nginx is the one step a rollout avoids.
  const applyBalancer = async () => {
    if (!lb || !deployment.loadBalancer) return;
    const files = [
      ...deployment.loadBalancer.files,
      { path: deployment.loadBalancer.nginx.upstreamFile, content: renderMachineServers(addresses) },
    ];
    // Every file is written (no short-circuit); the balancer reloads when any changed.
    const changed = files.map((f) => agent.writeIfChanged(f.path, f.content)).includes(true);
    if (changed || lb.nginxMaster() === undefined) await lb.nginxApply();
  };
  const lbUp = lb?.nginxMaster() !== undefined;
  for (const { name, address, plan } of deployment.machines) {
    mkdirSync(plan.baseDir, { recursive: true });
    writeFileSync(join(plan.baseDir, "plan.json"), JSON.stringify(plan, null, 2));
    const machine = machineAgent(plan);
    const changes = machine.pending(options.sha256);
    let drained = false;
    // Called by the agent once the canary has proven the release: a refused release never leaves rotation.
    const drain =
      lb !== undefined && lbUp && (changes.length > 0 || options.restart)
        ? async () => {
            say(`${name}: out of rotation while it changes (${options.restart ? "rolling restart" : changes.join("; ")})`);
            await machine.nginxStop();
            drained = true;
          }
        : undefined;
    try {
      await machine.deploy({ ...options, dryRun: false, drain });
      if (lb !== undefined) {
        const problem = await agent.waitUntilReady(`http://${address}${deployment.readyPath}`, plan.readyTimeoutSeconds);
        if (problem !== undefined) throw new RunnerError(`is not ready through its Nginx: ${problem}`);
      }
    } catch (err) {
      if (!(err instanceof RunnerError) && !(err instanceof agent.AgentError)) throw err;
      throw new RunnerError(`machine ${name}: ${(err as Error).message}`);
    }
    if (drained) {
      await backInRotation(deployment.address, name);
      say(`${name}: back in rotation`);
    }
  }
  await applyBalancer();
}

/**
 * The balancer skips a machine for LB_FAIL_TIMEOUT_SECONDS after a refused connection; draining the next one
 * before that ran out would leave none in rotation. Wait it out, then until the machine answers through the
 * balancer (apps that do not report `machine` are given the wait alone).
 */
async function backInRotation(address: string, machine: string): Promise<void> {
  await new Promise((r) => setTimeout(r, LB_FAIL_TIMEOUT_SECONDS * 1000 + 200));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${address}/`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { machine?: unknown };
      if (body.machine === machine || body.machine === undefined) return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new RunnerError(`machine ${machine} is ready but the load balancer did not send it a request within 10 s`);
}

async function apply(): Promise<void> {
  if (spawnSync("nginx", ["-v"]).error) throw new RunnerError(NGINX_MISSING);
  const rendered = JSON.parse(Buffer.from(env("NODESCALE_DEPLOYMENT_B64"), "base64").toString("utf8")) as LocalDeployment;
  const options = { bundle: env("NODESCALE_BUNDLE"), sha256: env("NODESCALE_RELEASE"), restart: false };
  const previous = previousDeployment(rendered.dir);
  const machinesNow = previous?.machines.length ?? 0;
  const wanted = rendered.machines.length;
  if (previous !== undefined && (machinesNow === 1) !== (wanted === 1)) {
    // The address moves between a machine's Nginx and the load balancer: two listeners cannot share it.
    say(
      `local.machines ${machinesNow} -> ${wanted} moves ${rendered.address} between a machine and the load balancer: requests fail for a few seconds while the old topology stops and the new one starts (zero-downtime changes keep the machine count on the same side of 1)`,
    );
    await down(rendered.dir);
  } else if (previous === undefined) {
    for (const [address, key] of [[rendered.address, "local.port"], ...(rendered.tls ? [[rendered.tls.address, "local.httpsPort"]] : [])]) {
      if (await listening(address)) {
        throw new RunnerError(`${address} is already in use by another program; stop it or set ${key} in nodescale.config.json.`);
      }
    }
  }
  const deployment = withCertificate(rendered);
  writeSecrets(deployment);
  mkdirSync(deployment.dir, { recursive: true });
  // Searchable by Nginx's workers (nobody, when the stack runs as root): each site checks for its keep-alive-off
  // file in here; an older state folder may be 0700. Its secrets and keys are 0600 files and a 0700 folder.
  chmodSync(deployment.dir, 0o755);
  writeFileSync(join(deployment.dir, "deployment.json"), JSON.stringify(deployment, null, 2));
  await rollout(deployment, options);

  // Machines the config no longer has: out of the rotation (done above), then stopped.
  const keep = new Set(deployment.machines.map((m) => m.plan.baseDir));
  const machinesDir = join(deployment.dir, "machines");
  for (const entry of existsSync(machinesDir) ? readdirSync(machinesDir) : []) {
    const base = join(machinesDir, entry);
    if (keep.has(base) || !existsSync(join(base, "plan.json"))) continue;
    await machineAgent(JSON.parse(readFileSync(join(base, "plan.json"), "utf8")) as MachinePlan).stop();
    rmSync(base, { recursive: true, force: true });
    say(`removed machine ${entry}`);
  }
  writeFileSync(join(deployment.dir, "run-id"), env("NODESCALE_RUN_ID"));
  say(
    `${wanted} machine(s) on release ${options.sha256.slice(0, 12)} behind http://${deployment.address}${deployment.tls ? ` and https://${deployment.tls.address}` : ""}`,
  );
}

async function destroy(): Promise<void> {
  const dir = env("NODESCALE_DIR");
  const current = existsSync(join(dir, "run-id")) ? readFileSync(join(dir, "run-id"), "utf8") : undefined;
  if (current !== undefined && current !== env("NODESCALE_RUN_ID")) {
    say(`run ${env("NODESCALE_RUN_ID")} was superseded; nothing to stop`);
    return;
  }
  await down(dir);
}

/** A rolling restart of every process on every machine, the release and config unchanged. */
async function reload(dir: string): Promise<void> {
  const deployment = previousDeployment(dir);
  const release = (() => {
    try {
      return readFileSync(join(deployment?.machines[0].plan.baseDir ?? "", "current", "RELEASE"), "utf8").trim();
    } catch {
      return undefined;
    }
  })();
  if (deployment === undefined || release === undefined) throw new RunnerError("nothing is deployed here; run 'npm run local' first.");
  // The running release is unpacked on every machine already: the agent does not read a bundle for it.
  await rollout(deployment, { bundle: "(already unpacked)", sha256: release, restart: true });
  say(`rolling restart done on ${deployment.machines.length} machine(s)`);
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new RunnerError(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const [action, dir] = process.argv.slice(2);
  try {
    if (action === "apply") await apply();
    else if (action === "destroy") await destroy();
    else if (action === "reload") await reload(dir ?? env("NODESCALE_DIR"));
    else if (action === "down") await down(dir ?? env("NODESCALE_DIR"));
    else throw new RunnerError(`unknown action ${action}; use apply, destroy, reload or down`);
  } catch (err) {
    if (!(err instanceof RunnerError) && !(err instanceof agent.AgentError)) throw err;
    console.error(`nodescale local: ${(err as Error).message}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
