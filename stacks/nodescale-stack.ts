import { type Construct, TerraformOutput, TerraformStack } from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";

/** Terraform the stacks need: the S3 backend's lock file (`use_lockfile`) arrived in 1.10. */
export const TERRAFORM_REQUIRED_VERSION = ">= 1.10";

/**
 * Base of every deployable stack. Its validation holds the contract other parts rely on: a Terraform output
 * named `url`, and a post-deploy health check so that no deploy ends without proving the service healthy.
 */
export class NodeScaleStack extends TerraformStack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // An older Terraform stops at init naming the version, instead of ignoring a backend setting it does not know.
    this.addOverride("terraform.required_version", TERRAFORM_REQUIRED_VERSION);
    this.node.addValidation({
      validate: () => {
        const all = this.node.findAll();
        const errors: string[] = [];
        if (!all.some((c) => TerraformOutput.isTerraformOutput(c) && c.node.id === "url")) {
          errors.push(`has no Terraform output named "url" (every stack publishes the service's base URL)`);
        }
        if (!all.some((c) => c instanceof PostDeployHealthCheck)) {
          errors.push(`has no PostDeployHealthCheck (every deploy must end by proving the service healthy)`);
        }
        return errors;
      },
    });
  }
}
