import { TerraformOutput, Testing } from "../../constructs/cdk";
import { PostDeployHealthCheck } from "../../constructs/health/post-deploy-health-check";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { NodeScaleStack } from "../../stacks/nodescale-stack";

describe("every NodeScale stack", () => {
  it("fails synthesis without a url output and a post-deploy health check", () => {
    const stack = new NodeScaleStack(Testing.app(), "bare");
    expect(() => Testing.synth(stack, true)).toThrow(
      [
        "Validation failed with the following errors:",
        '  [bare] has no Terraform output named "url" (every stack publishes the service\'s base URL)',
        "  [bare] has no PostDeployHealthCheck (every deploy must end by proving the service healthy)",
      ].join("\n"),
    );
  });

  it("declares the Terraform it needs, so an older one stops at init naming the version", () => {
    const stack = new NodeScaleStack(Testing.app(), "versioned");
    new TerraformOutput(stack, "url", { value: "http://127.0.0.1:8080" });
    new PostDeployHealthCheck(stack, "Health", { url: "http://127.0.0.1:8080", spec: NodeServiceSpec.parse({}) });
    const json = JSON.parse(Testing.synth(stack, true)) as { terraform: { required_version: string } };
    expect(json.terraform.required_version).toBe(">= 1.10");
  });

  it("names only what is missing", () => {
    const stack = new NodeScaleStack(Testing.app(), "half");
    new TerraformOutput(stack, "url", { value: "http://127.0.0.1:8080" });
    expect(() => Testing.synth(stack, true)).toThrow(/\[half\] has no PostDeployHealthCheck/);
    expect(() => Testing.synth(stack, true)).not.toThrow(/output named "url"/);
  });
});
