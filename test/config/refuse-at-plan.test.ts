import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataResource, TerraformStack, Testing } from "../../constructs/cdk";
import { refuseAtPlan } from "../../constructs/refuse-at-plan";
import { tempDir } from "../helpers/fixtures";

/** `terraform init` + `plan` for real on a stack of terraform_data only (nothing to download). */
function plan(build: (stack: TerraformStack) => void): { status: number | null; output: string } {
  const stack = new TerraformStack(Testing.app(), "refusals");
  build(stack);
  const dir = tempDir("nodescale-refusal-");
  try {
    writeFileSync(join(dir, "main.tf.json"), Testing.synth(stack));
    const env = { ...process.env, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1", TF_CLI_CONFIG_FILE: "/dev/null" };
    const init = spawnSync("terraform", ["init", "-input=false", "-no-color"], { cwd: dir, env, encoding: "utf8" });
    if (init.status !== 0) throw new Error(`terraform init failed: ${init.stdout}${init.stderr}`);
    const run = spawnSync("terraform", ["plan", "-input=false", "-no-color", "-lock=false"], { cwd: dir, env, encoding: "utf8" });
    return { status: run.status, output: `${run.stdout}${run.stderr}`.replace(/\s+/g, " ") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("a refusal at plan", () => {
  it("stops terraform plan with its own message, before anything changes", () => {
    const run = plan((stack) => {
      new DataResource(stack, "Guarded", {
        lifecycle: { precondition: [refuseAtPlan(stack, "Always", "kubernetes.cluster.context is not set")] },
      });
    });
    expect(run.status).toBe(1);
    expect(run.output).toContain("Resource precondition failed");
    expect(run.output).toContain("kubernetes.cluster.context is not set");
  });

  it("lets the plan through while the value stays within the limit, and stops it past the limit", () => {
    const within = plan((stack) => {
      new DataResource(stack, "Small", { lifecycle: { precondition: [refuseAtPlan(stack, "Bytes", "too large", 100, 65536)] } });
    });
    expect(within.status).toBe(0);
    const over = plan((stack) => {
      new DataResource(stack, "Large", { lifecycle: { precondition: [refuseAtPlan(stack, "Bytes", "too large", 70000, 65536)] } });
    });
    expect(over.status).toBe(1);
    expect(over.output).toContain("too large");
  });
});
