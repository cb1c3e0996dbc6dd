import type { Construct, ITerraformDependable } from "../cdk";
import { PostDeployHealthCheck } from "../health/post-deploy-health-check";
import type { NodeServiceSpec } from "../service/spec";
import type { ProcessPlan } from "./plan";

/** A new machine installs Node.js, Nginx and PM2 before it can answer: how long a deploy waits for one. */
export const NEW_MACHINE_SECONDS = 900;

export interface NewMachineReadyOptions {
  readonly spec: NodeServiceSpec;
  readonly plan: ProcessPlan;
  /** The release the new machine must answer with. */
  readonly release: string;
  /** The new machine's own address (not the one about to move to it). */
  readonly url: string;
  /** Its id: the check runs when the machine is new, not on every apply. */
  readonly machineId: string;
  /**
   * What must happen before the check (the release push, when releases do not come with the machine).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * Blue/green on one machine: the replacement must answer healthy, with every process and the release, on its own
 * address before the stable address (Elastic IP, reserved IP) moves to it and the old machine goes.
 */
export function newMachineReady(scope: Construct, id: string, options: NewMachineReadyOptions): PostDeployHealthCheck {
  return new PostDeployHealthCheck(scope, id, {
    url: options.url,
    spec: options.spec,
    expectWorkers: options.plan.expectedProcesses,
    expectRelease: options.release,
    timeoutSeconds: NEW_MACHINE_SECONDS,
    triggers: { machine: options.machineId },
    runOnEveryApply: false,
    dependsOn: options.dependsOn,
  });
}
