import { Construct, TerraformOutput, TerraformStack } from "../constructs/cdk";
import { LocalTarget } from "../constructs/vm/local-target";
import type { LoadedConfig } from "./config";

export interface LocalStackProps {
  readonly loaded: LoadedConfig;
  /** Absolute path of the project; state and logs go under <projectRoot>/.nodescale/local. */
  readonly projectRoot: string;
  /** Cores for `workers: "auto"`. @default os.availableParallelism() */
  readonly cores?: number;
}

/** `cdktf deploy local`: the VM topology on loopback. Uses only Terraform's built-in terraform_data. */
export class LocalStack extends TerraformStack {
  readonly target: LocalTarget;

  constructor(scope: Construct, id: string, props: LocalStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    this.target = new LocalTarget(this, "Target", {
      spec,
      mode: config.vm.mode,
      port: config.local.port,
      projectRoot: props.projectRoot,
      cores: props.cores,
    });
    new TerraformOutput(this, "url", { value: this.target.url, description: "Base URL of the service (Nginx on loopback)" });
    new TerraformOutput(this, "workers", { value: this.target.plan.expectedProcesses, description: "Node processes behind Nginx" });
  }
}
