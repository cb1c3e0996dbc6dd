import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Construct, DataResource } from "../cdk";
import { PostDeployHealthCheck } from "../health/post-deploy-health-check";
import { invalidProp } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import { type ProcessPlan, processPlan, type VmMode } from "./plan";
import { pm2Apps, renderEcosystem, renderNginxMain, renderNginxSite, renderReloadScript } from "./render";

export interface LocalTargetProps {
  readonly spec: NodeServiceSpec;
  /**
   * PM2 cluster mode on one port, or fork mode with one process per port.
   * @default "cluster"
   */
  readonly mode?: VmMode;
  /**
   * Loopback port Nginx listens on.
   * @default 8080
   */
  readonly port?: number;
  /** Absolute path of the NodeScale project (holds app/, node_modules/ and the state folder). */
  readonly projectRoot: string;
  /**
   * Release id of the app code (its bundle's SHA-256): the processes report it, a new one triggers a rolling
   * reload, and the health check waits until it answers.
   */
  readonly release: string;
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
   * Seconds the post-deploy health check waits.
   * @default 60
   */
  readonly healthTimeoutSeconds?: number;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/**
 * The VM topology on this machine: Nginx (own prefix) in front of PM2 (own PM2_HOME) on 127.0.0.1, applied
 * by terraform_data + local-exec so no provider is downloaded. Redeploys are rolling reloads.
 */
export class LocalTarget extends Construct {
  readonly url: string;
  readonly plan: ProcessPlan;
  readonly stateDir: string;
  readonly deployId: string;
  readonly files: Readonly<Record<"nginxConf" | "nginxSite" | "ecosystem" | "reloadScript", string>>;

  constructor(scope: Construct, id: string, props: LocalTargetProps) {
    super(scope, id);
    const mode = props.mode ?? "cluster";
    const port = props.port ?? 8080;
    const cores = props.cores ?? availableParallelism();
    const healthTimeoutSeconds = props.healthTimeoutSeconds ?? 60;
    const instance = props.instance ?? "local";
    if (!props.projectRoot.startsWith("/")) {
      invalidProp("LocalTarget", "projectRoot", props.projectRoot, "must be an absolute path");
    }
    if (!Number.isInteger(port) || port < 1024 || port > 65535) {
      invalidProp("LocalTarget", "port", port, "must be a whole number 1024-65535");
    }

    const spec = props.spec;
    this.plan = processPlan(spec, mode, cores);
    this.stateDir = join(props.projectRoot, ".nodescale", instance);
    const prefix = join(this.stateDir, "nginx");
    const ecosystemFile = join(this.stateDir, "ecosystem.config.js");
    const ecosystemOptions = { appDir: join(props.projectRoot, "app"), logDir: join(this.stateDir, "logs"), release: props.release };
    this.files = {
      nginxConf: renderNginxMain({ prefix, siteFile: join(prefix, "site.conf") }),
      nginxSite: renderNginxSite(spec, this.plan, { listen: [`127.0.0.1:${port}`], accessLog: join(prefix, "logs", "access.log") }),
      ecosystem: renderEcosystem(spec, this.plan, ecosystemOptions),
      reloadScript: renderReloadScript(spec, this.plan, { ecosystemFile }),
    };
    this.deployId = createHash("sha256").update(JSON.stringify(this.files)).digest("hex");
    this.url = `http://127.0.0.1:${port}`;
    const apps = pm2Apps(spec, this.plan, ecosystemOptions).map((app) => app.name as string);

    const common = {
      NODESCALE_DIR: "${self.input.dir}",
      NODESCALE_ROOT: "${self.input.root}",
      NODESCALE_DEPLOY_ID: "${self.input.deploy_id}",
    };
    const deploy = new DataResource(this, "Deploy", {
      input: { dir: this.stateDir, root: props.projectRoot, deploy_id: this.deployId },
      triggersReplace: { deploy_id: this.deployId },
      // The new deployment reloads in place before the old one's destroy step runs (and sees it was superseded).
      lifecycle: { createBeforeDestroy: true },
      provisioners: [
        {
          type: "local-exec",
          workingDir: props.projectRoot,
          command: "bash scripts/local-target.sh apply",
          environment: {
            ...common,
            NODESCALE_PORT: String(port),
            NODESCALE_APPS: apps.join(" "),
            // Base64 keeps `${...}` in the files away from Terraform's string interpolation.
            NGINX_CONF_B64: b64(this.files.nginxConf),
            NGINX_SITE_B64: b64(this.files.nginxSite),
            ECOSYSTEM_B64: b64(this.files.ecosystem),
            RELOAD_B64: b64(this.files.reloadScript),
          },
        },
        {
          type: "local-exec",
          when: "destroy",
          workingDir: props.projectRoot,
          command: "bash scripts/local-target.sh destroy",
          environment: common,
        },
      ],
    });

    new PostDeployHealthCheck(this, "HealthCheck", {
      url: this.url,
      spec,
      expectWorkers: this.plan.expectedProcesses,
      timeoutSeconds: healthTimeoutSeconds,
      expectRelease: props.release,
      triggers: { deploy_id: this.deployId },
      projectDir: props.projectRoot,
      dependsOn: [deploy],
    });
  }
}
