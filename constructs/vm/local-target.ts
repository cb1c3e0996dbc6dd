import { availableParallelism, userInfo } from "node:os";
import { join } from "node:path";
import { Construct, DataResource, Fn, TerraformAsset } from "../cdk";
import { healthBurstWithin, PostDeployHealthCheck } from "../health/post-deploy-health-check";
import { compiledModulePath, pm2BinPath } from "../package-files";
import { refuseAtPlan } from "../refuse-at-plan";
import { type AppBundle, bundleFile } from "../release/bundle";
import { invalidProp } from "../service/errors";
import { missingEnvSecretsMessage, readEnvSecrets, shellOnlySecretsMessage } from "../service/secrets";
import type { NodeServiceSpec } from "../service/spec";
import type { LocalDeployment } from "./local-runner";
import { localTlsFiles } from "./local-tls";
import { type MachineNginx, renderMachinePlan } from "./machine-plan";
import { DEFAULT_VM_MODE, type ProcessPlan, processPlan, type VmMode } from "./plan";
import { renderLoadBalancerSite, renderNginxMain, renderNginxSite, type TlsSite } from "./render";

/** The runner of the local target's steps (local-runner.ts, compiled), found from this package. */
/**
 * The local Nginx's workers run as the user who deploys. Under a root master they would otherwise be `nobody`, who
 * may not traverse the checkout (a 0700 home or temporary folder) to the files they read per request: the
 * keep-alive switch before a reload, the upstream. Not root: Nginx never switches, so no directive.
 */
export function nginxWorkerUser(): string | undefined {
  return process.getuid?.() === 0 ? userInfo().username : undefined;
}

export const LOCAL_RUNNER = compiledModulePath("constructs/vm/local-runner.js");
/** Simulated machines get loopback addresses 127.0.1.1 … 127.0.1.N, so each has the ports a cloud VM has. */
export const MAX_LOCAL_MACHINES = 16;

/** LocalTarget's defaults: the constructor, the props' JSDoc and the config schema read these. */
export const LOCAL_TARGET_DEFAULTS = {
  mode: DEFAULT_VM_MODE,
  port: 8080,
  httpsPort: 8443,
  https: true,
  clientLimits: false,
  instance: "local",
  machines: 1,
  healthTimeoutSeconds: 60,
} as const;

export interface LocalTargetProps {
  /** The service every simulated machine runs. */
  readonly spec: NodeServiceSpec;
  /**
   * PM2 cluster mode on one port, or fork mode with one process per port.
   * @default "cluster"
   */
  readonly mode?: VmMode;
  /**
   * Loopback port the service is reached on (the load balancer's, or the single machine's Nginx).
   * @default 8080
   */
  readonly port?: number;
  /**
   * Serve HTTPS too, with a certificate from a CA the deploy generates under the state folder (`caCert`), on
   * `httpsPort`, with the same TLS settings cloud VMs get.
   * @default true
   */
  readonly https?: boolean;
  /**
   * Loopback port of the HTTPS listener.
   * @default 8443
   */
  readonly httpsPort?: number;
  /**
   * Enforce `spec.clientLimits` where clients connect (the machine's Nginx, or the local load balancer). Off by
   * default here, so that a load test through the local stack measures the service, not the limit.
   * @default false
   */
  readonly clientLimits?: boolean;
  /** Absolute path of your project: the state folder goes under <projectRoot>/.nodescale. */
  readonly projectRoot: string;
  /** The app release every machine runs and reports; a new one is rolled out machine by machine. */
  readonly bundle: AppBundle;
  /**
   * Cores used to resolve `workers: "auto"`.
   * @default os.availableParallelism()
   */
  readonly cores?: number;
  /**
   * Name of the state folder under <projectRoot>/.nodescale.
   * @default "local"
   */
  readonly instance?: string;
  /**
   * Simulated machines, each its own Nginx and PM2 as a cloud VM gets them; with 2 or more a local load
   * balancer (Nginx) on `port` drains and health-checks them as the cloud's would.
   * @default 1
   */
  readonly machines?: number;
  /**
   * Seconds the post-deploy health check waits.
   * @default 60
   */
  readonly healthTimeoutSeconds?: number;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/**
 * The VM topology on this machine: one or several simulated machines (Nginx with its own prefix in front of
 * PM2 with its own PM2_HOME, converged by the same machine agent a cloud VM runs), applied by terraform_data
 * + local-exec so no provider is downloaded. Every apply converges and repairs, then health-checks.
 */
export class LocalTarget extends Construct {
  /** Where the service answers on this machine (http://127.0.0.1:<port>). */
  readonly url: string;
  /** Where it answers over HTTPS (https://127.0.0.1:<httpsPort>); undefined with `https: false`. */
  readonly httpsUrl?: string;
  /** The local CA's certificate, which a client trusts to reach `httpsUrl`; undefined with `https: false`. */
  readonly caCert?: string;
  /** Ports and process counts PM2 runs on each machine. */
  readonly plan: ProcessPlan;
  /** Folder of this deployment's machines, logs and releases (<projectRoot>/.nodescale/<instance>). */
  readonly stateDir: string;
  /** What the apply step converges to: every machine's plan and the load balancer. */
  readonly deployment: LocalDeployment;
  /** The terraform_data whose create runs the rollout and whose destroy stops everything. */
  readonly deploy: DataResource;
  /** The check that ends every apply. */
  readonly healthCheck: PostDeployHealthCheck;
  /** The same check over HTTPS, trusting the local CA; undefined with `https: false`. */
  readonly httpsHealthCheck?: PostDeployHealthCheck;

  constructor(scope: Construct, id: string, props: LocalTargetProps) {
    super(scope, id);
    const mode = props.mode ?? LOCAL_TARGET_DEFAULTS.mode;
    const port = props.port ?? LOCAL_TARGET_DEFAULTS.port;
    const cores = props.cores ?? availableParallelism();
    const healthTimeoutSeconds = props.healthTimeoutSeconds ?? LOCAL_TARGET_DEFAULTS.healthTimeoutSeconds;
    const instance = props.instance ?? LOCAL_TARGET_DEFAULTS.instance;
    const machines = props.machines ?? LOCAL_TARGET_DEFAULTS.machines;
    const https = props.https ?? LOCAL_TARGET_DEFAULTS.https;
    const httpsPort = props.httpsPort ?? LOCAL_TARGET_DEFAULTS.httpsPort;
    const clientLimits = props.clientLimits ?? LOCAL_TARGET_DEFAULTS.clientLimits;
    if (!props.projectRoot.startsWith("/")) {
      invalidProp("LocalTarget", "projectRoot", props.projectRoot, "must be an absolute path");
    }
    if (!Number.isInteger(port) || port < 1024 || port > 65535) {
      invalidProp("LocalTarget", "port", port, "must be a whole number 1024-65535");
    }
    if (https && (!Number.isInteger(httpsPort) || httpsPort < 1024 || httpsPort > 65535 || httpsPort === port)) {
      invalidProp("LocalTarget", "httpsPort", httpsPort, `must be a whole number 1024-65535 other than port (${port})`);
    }
    if (!Number.isInteger(machines) || machines < 1 || machines > MAX_LOCAL_MACHINES) {
      invalidProp("LocalTarget", "machines", machines, `must be a whole number 1-${MAX_LOCAL_MACHINES}`);
    }

    const spec = props.spec;
    this.plan = processPlan(spec, mode, cores);
    this.stateDir = join(props.projectRoot, ".nodescale", instance);
    this.url = `http://127.0.0.1:${port}`;
    const tlsFiles = localTlsFiles(this.stateDir);
    // TLS ends where clients connect: the single machine's Nginx, or the load balancer in front of several.
    const tls: TlsSite | undefined = https
      ? { listen: [`127.0.0.1:${httpsPort}`], certificate: tlsFiles.cert, certificateKey: tlsFiles.key }
      : undefined;
    if (https) {
      this.httpsUrl = `https://127.0.0.1:${httpsPort}`;
      this.caCert = tlsFiles.caCert;
    }
    const pm2Bin = pm2BinPath();

    const machineList = Array.from({ length: machines }, (_, i) => {
      const name = `m${i + 1}`;
      const baseDir = join(this.stateDir, "machines", name);
      const host = machines === 1 ? "127.0.0.1" : `127.0.1.${i + 1}`;
      const address = `${host}:${port}`;
      const prefix = join(baseDir, "nginx");
      const nginx: MachineNginx = {
        kind: "prefix",
        prefix,
        conf: join(prefix, "nginx.conf"),
        pidFile: join(prefix, "nginx.pid"),
        upstreamFile: join(prefix, "upstream.conf"),
        listen: address,
      };
      const site = join(prefix, "site.conf");
      const plan = renderMachinePlan(spec, this.plan, {
        machine: name,
        reportMachine: true,
        clientFacing: machines === 1,
        host,
        baseDir,
        logDir: join(baseDir, "logs"),
        pm2: { home: join(baseDir, "pm2"), bin: pm2Bin },
        nginx,
        files: [
          { path: nginx.conf, content: renderNginxMain({ prefix, siteFile: site, user: nginxWorkerUser() }) },
          {
            path: site,
            content: renderNginxSite(spec, this.plan, {
              listen: [address],
              ...(machines === 1 && tls ? { tls } : {}),
              // Limits apply where clients connect: here with one machine, at the balancer with several.
              clientLimits: machines === 1 && clientLimits,
              // Behind the local balancer (it connects from 127.0.0.1): its X-Forwarded-Proto reaches the app.
              ...(machines > 1 ? { balancerCidrs: ["127.0.0.1/32"] } : {}),
              accessLog: join(prefix, "logs", "access.log"),
              upstreamFile: nginx.upstreamFile,
            }),
          },
        ],
      });
      return { name, address, plan };
    });

    const lbPrefix = join(this.stateDir, "load-balancer");
    const lbNginx: MachineNginx = {
      kind: "prefix",
      prefix: lbPrefix,
      conf: join(lbPrefix, "nginx.conf"),
      pidFile: join(lbPrefix, "nginx.pid"),
      upstreamFile: join(lbPrefix, "machines.conf"),
      listen: `127.0.0.1:${port}`,
    };
    this.deployment = {
      service: spec.name,
      dir: this.stateDir,
      address: `127.0.0.1:${port}`,
      readyPath: spec.readyPath,
      machines: machineList,
      // References only: the runner reads the values from its environment at apply time.
      ...(Object.keys(spec.secrets).length > 0 ? { secrets: spec.secrets } : {}),
      ...(https
        ? {
            tls: {
              files: tlsFiles,
              label: instance,
              address: `127.0.0.1:${httpsPort}`,
              siteFile: machines === 1 ? join(machineList[0].plan.baseDir, "nginx", "site.conf") : join(lbPrefix, "site.conf"),
            },
          }
        : {}),
      ...(machines > 1
        ? {
            loadBalancer: {
              nginx: lbNginx,
              drainSeconds: spec.deregistrationDelaySeconds,
              files: [
                {
                  path: lbNginx.conf,
                  content: renderNginxMain({ prefix: lbPrefix, siteFile: join(lbPrefix, "site.conf"), user: nginxWorkerUser() }),
                },
                {
                  path: join(lbPrefix, "site.conf"),
                  content: renderLoadBalancerSite(spec, {
                    listen: [lbNginx.listen],
                    ...(tls ? { tls } : {}),
                    clientLimits,
                    machines,
                    upstreamFile: lbNginx.upstreamFile,
                    accessLog: join(lbPrefix, "logs", "access.log"),
                  }),
                },
              ],
            },
          }
        : {}),
    };

    const bundle = new TerraformAsset(this, "Bundle", { path: bundleFile(this, props.bundle) });
    // The runner's path is a literal of the current configuration (a destroy step reads that, not the state),
    // so it holds even after the project or NodeScale moved.
    const common = { NODESCALE_DIR: "${self.input.dir}", NODESCALE_RUN_ID: "${self.input.run}", NODESCALE_RUNNER: LOCAL_RUNNER };
    // This machine has no role to read SSM or Secrets Manager with: the local stack takes secrets from the shell.
    const shellOnly = shellOnlySecretsMessage(spec.secrets);
    // The shell that synthesizes is the one that deploys: a variable missing now stops the plan, naming it.
    const { missing } = readEnvSecrets(spec.secrets, process.env);
    const refusals = [
      ...(shellOnly !== undefined ? [refuseAtPlan(this, "SecretsNotFromShell", shellOnly)] : []),
      ...(missing.length > 0 ? [refuseAtPlan(this, "SecretsMissing", missingEnvSecretsMessage(missing))] : []),
    ];
    this.deploy = new DataResource(this, "Deploy", {
      ...(refusals.length > 0 ? { lifecycle: { createBeforeDestroy: true, precondition: refusals } } : {}),
      // A new run on every apply: the machines are converged (and drift repaired) even when nothing changed.
      input: { dir: this.stateDir, run: Fn.timestamp() },
      triggersReplace: { run: Fn.timestamp() },
      // The new run converges in place before the old run's destroy step, which sees it was superseded.
      ...(refusals.length > 0 ? {} : { lifecycle: { createBeforeDestroy: true } }),
      provisioners: [
        {
          type: "local-exec",
          workingDir: props.projectRoot,
          command: 'node "$NODESCALE_RUNNER" apply',
          environment: {
            ...common,
            NODESCALE_BUNDLE: Fn.abspath(bundle.path),
            NODESCALE_RELEASE: props.bundle.sha256,
            // Base64 keeps `${...}` in the rendered files away from Terraform's string interpolation.
            NODESCALE_DEPLOYMENT_B64: b64(JSON.stringify(this.deployment)),
          },
        },
        {
          type: "local-exec",
          when: "destroy",
          workingDir: props.projectRoot,
          command: 'node "$NODESCALE_RUNNER" destroy',
          environment: common,
        },
      ],
    });

    this.healthCheck = new PostDeployHealthCheck(this, "HealthCheck", {
      url: this.url,
      spec,
      // One machine: every process must answer through Nginx. Several: the balancer's and each machine's
      // keep-alive pools make a short burst favour a few processes, so the check asks that every machine is
      // in rotation, and each machine's agent has already verified its own processes (count and release).
      ...(machines === 1 ? { expectWorkers: this.plan.expectedProcesses } : { expectMachines: machines }),
      timeoutSeconds: healthTimeoutSeconds,
      expectRelease: props.bundle.sha256,
      ...(clientLimits ? { burstRequests: healthBurstWithin(spec) } : {}),
      dependsOn: [this.deploy],
    });
    if (this.httpsUrl !== undefined) {
      // The same service through the TLS listener, trusting only the local CA (not the system's).
      this.httpsHealthCheck = new PostDeployHealthCheck(this, "HttpsHealthCheck", {
        url: this.httpsUrl,
        spec,
        caFile: tlsFiles.caCert,
        timeoutSeconds: healthTimeoutSeconds,
        ...(clientLimits ? { burstRequests: healthBurstWithin(spec) } : {}),
        expectRelease: props.bundle.sha256,
        dependsOn: [this.healthCheck.resource],
      });
    }
  }
}
