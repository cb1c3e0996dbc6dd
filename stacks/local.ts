import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { App, type Construct, LocalBackend, TerraformOutput } from "../constructs/cdk";
import type { AppBundle } from "../constructs/release/bundle";
import { invalidProp } from "../constructs/service/errors";
import { LocalTarget } from "../constructs/vm/local-target";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";

export interface LocalStackProps {
  readonly loaded: LoadedConfig;
  /** The built app; its hash is the release every local machine runs and reports. */
  readonly bundle: AppBundle;
  /** Absolute path of the project; state and logs go under <projectRoot>/.nodescale/<instance>. */
  readonly projectRoot: string;
  /** Cores for `workers: "auto"`. @default os.availableParallelism() */
  readonly cores?: number;
  /**
   * Names the state folder (.nodescale/<instance>) and state file, so a test deployment never touches yours.
   * @default "local"
   */
  readonly instance?: string;
}

/**
 * Terraform caches the backend it was initialised with in the stack's synth folder, which every instance
 * (and a moved checkout) shares; when that cache names another state file, `terraform init` would stop with
 * "Backend configuration changed". Forgetting the cache is `terraform init -reconfigure`: each instance's
 * state file stays where it is, and nothing is migrated between them.
 */
export function forgetOtherLocalBackend(stackDir: string, statePath: string): boolean {
  const cache = join(stackDir, ".terraform", "terraform.tfstate");
  if (!existsSync(cache)) return false;
  try {
    const cached = JSON.parse(readFileSync(cache, "utf8")) as { backend?: { type?: string; config?: { path?: string } } };
    if (cached.backend?.type === "local" && cached.backend.config?.path === statePath) return false;
  } catch {
    // An unreadable cache is no better than none.
  }
  rmSync(cache, { force: true });
  return true;
}

/** `cdktf deploy local`: the VM topology on loopback. Uses only Terraform's built-in terraform_data. */
export class LocalStack extends NodeScaleStack {
  readonly target: LocalTarget;

  constructor(scope: Construct, id: string, props: LocalStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const instance = props.instance ?? "local";
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(instance)) {
      invalidProp("LocalStack", "instance", instance, "lower-case letters, digits and '-', at most 41");
    }
    const statePath = join(props.projectRoot, ".nodescale", `${instance}.tfstate`);
    new LocalBackend(this, { path: statePath });
    forgetOtherLocalBackend(join(App.of(this).outdir, "stacks", id), statePath);
    this.target = new LocalTarget(this, "Target", {
      spec,
      mode: config.vm.mode,
      port: config.local.port,
      https: config.local.https,
      httpsPort: config.local.httpsPort,
      clientLimits: config.local.clientLimits,
      machines: config.local.machines,
      projectRoot: props.projectRoot,
      bundle: props.bundle,
      cores: props.cores,
      instance,
    });
    const machines = this.target.deployment.machines.length;
    new TerraformOutput(this, "url", {
      value: this.target.url,
      description: machines > 1 ? "Base URL of the service (the local load balancer)" : "Base URL of the service (Nginx on loopback)",
    });
    if (this.target.httpsUrl !== undefined && this.target.caCert !== undefined) {
      new TerraformOutput(this, "https_url", { value: this.target.httpsUrl, description: "The service over HTTPS (HTTP/2, TLS 1.2+)" });
      new TerraformOutput(this, "ca_cert", {
        value: this.target.caCert,
        description: "The local CA's certificate: trust it to reach https_url (curl --cacert, the health CLI's --ca)",
      });
    }
    new TerraformOutput(this, "workers", { value: this.target.plan.expectedProcesses, description: "Node processes per machine" });
    new TerraformOutput(this, "machines", { value: machines, description: "Simulated machines" });
  }
}
