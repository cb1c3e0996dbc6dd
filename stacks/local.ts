import { join } from "node:path";
import { type Construct, LocalBackend, TerraformOutput } from "../constructs/cdk";
import { invalidProp } from "../constructs/service/errors";
import type { AppBundle } from "../constructs/vm/bundle";
import { LocalTarget } from "../constructs/vm/local-target";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";

export interface LocalStackProps {
  readonly loaded: LoadedConfig;
  /** The built app; its hash is the release the local processes run and report. */
  readonly bundle: AppBundle;
  /** Absolute path of the project; state and logs go under <projectRoot>/.nodescale/local. */
  readonly projectRoot: string;
  /** Cores for `workers: "auto"`. @default os.availableParallelism() */
  readonly cores?: number;
  /**
   * Names the state folder (.nodescale/<instance>) and state file, so a test deployment never touches yours.
   * @default "local"
   */
  readonly instance?: string;
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
    // Absolute paths: the state and the scripts are found whatever output folder cdktf synthesizes into.
    new LocalBackend(this, { path: join(props.projectRoot, ".nodescale", `${instance}.tfstate`) });
    this.target = new LocalTarget(this, "Target", {
      spec,
      mode: config.vm.mode,
      port: config.local.port,
      projectRoot: props.projectRoot,
      release: props.bundle.sha256,
      cores: props.cores,
      instance,
    });
    new TerraformOutput(this, "url", { value: this.target.url, description: "Base URL of the service (Nginx on loopback)" });
    new TerraformOutput(this, "workers", { value: this.target.plan.expectedProcesses, description: "Node processes behind Nginx" });
  }
}
