import { type Construct, type ITerraformDependable, TerraformOutput } from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import type { NodeServiceSpec } from "../constructs/service/spec";
import type { AppBundle } from "../constructs/vm/bundle";
import type { ProcessPlan } from "../constructs/vm/plan";

export interface VmServiceOptions {
  readonly spec: NodeServiceSpec;
  readonly plan: ProcessPlan;
  readonly bundle: AppBundle;
  /** The machine's stable public address (Elastic IP, reserved IP). */
  readonly publicIp: string;
  /** Where the address comes from, for the `url` output's description. */
  readonly addressKind: string;
  /** Output name and value identifying the machine (instance_id, droplet_id). */
  readonly machineOutput: readonly [string, string];
  /** The address must be attached before the check runs. */
  readonly dependsOn: ITerraformDependable[];
}

/** What every cloud VM stack shares: the `url`, address and machine outputs, and the post-deploy health check. */
export function addVmService(stack: Construct, options: VmServiceOptions): void {
  const url = `http://${options.publicIp}`;
  const [machineOutput, machineId] = options.machineOutput;
  new TerraformOutput(stack, "url", { value: url, description: `Base URL of the service (Nginx on the ${options.addressKind})` });
  new TerraformOutput(stack, "public_ip", { value: options.publicIp });
  new TerraformOutput(stack, machineOutput, { value: machineId });
  new PostDeployHealthCheck(stack, "HealthCheck", {
    url,
    spec: options.spec,
    expectWorkers: options.plan.expectedProcesses,
    expectRelease: options.bundle.sha256,
    // A new machine installs Node.js, Nginx and PM2 first; a release rollout on a running one is quicker.
    timeoutSeconds: 900,
    triggers: { machine: machineId },
    dependsOn: options.dependsOn,
  });
}
