import { type Construct, type ITerraformDependable, TerraformOutput } from "../constructs/cdk";
import { healthBurstWithin, PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import type { AppBundle } from "../constructs/release/bundle";
import type { NodeServiceSpec } from "../constructs/service/spec";
import { NEW_MACHINE_SECONDS } from "../constructs/vm/new-machine-check";
import type { ProcessPlan } from "../constructs/vm/plan";

/** A rollout over a group replaces machines one at a time. */
const PER_MACHINE_REFRESH_SECONDS = 420;

export interface VmServiceOptions {
  readonly spec: NodeServiceSpec;
  readonly plan: ProcessPlan;
  readonly bundle: AppBundle;
  /** Host name or address clients use (Elastic IP, reserved IP, load balancer DNS name). */
  readonly address: string;
  /** Where the address comes from, for the `url` output's description. */
  readonly addressKind: string;
  /** Outputs besides `url`, by name. */
  readonly outputs: Readonly<Record<string, string>>;
  /** Machines behind a load balancer; 1 for a single machine. */
  readonly machines: number;
  /** Nginx enforces the spec's per-client limits: the check, one client, keeps its burst within them. */
  readonly clientLimits: boolean;
  /** Values whose change means a new machine or group, so the check runs with a longer wait. */
  readonly triggers: Readonly<Record<string, string>>;
  /** What must exist before the check runs (the address attached, the group created). */
  readonly dependsOn: ITerraformDependable[];
}

/** What every cloud VM stack shares: the `url` and other outputs, and the post-deploy health check. */
export function addVmService(stack: Construct, options: VmServiceOptions): void {
  const several = options.machines > 1;
  // With a domain, TLS ends at the load balancer (several machines) or on the machine (one): clients use the domain;
  // the check asks the address itself for the domain (Host and TLS name), trusting only public CAs.
  const domain = options.spec.domain;
  const url = domain !== undefined ? `https://${domain}` : `http://${options.address}`;
  new TerraformOutput(stack, "url", {
    value: url,
    description:
      domain !== undefined
        ? `Base URL of the service (HTTPS at ${options.addressKind})`
        : `Base URL of the service (${options.addressKind})`,
  });
  for (const [name, value] of Object.entries(options.outputs)) new TerraformOutput(stack, name, { value });
  new PostDeployHealthCheck(stack, "HealthCheck", {
    url: domain !== undefined ? `https://${options.address}` : url,
    ...(domain !== undefined ? { host: domain } : {}),
    spec: options.spec,
    // Behind a load balancer every machine must be in rotation; each machine's agent has verified its own
    // processes. One machine: every process answers through its Nginx.
    ...(several ? { expectMachines: options.machines } : { expectWorkers: options.plan.expectedProcesses }),
    expectRelease: options.bundle.sha256,
    ...(options.clientLimits ? { burstRequests: healthBurstWithin(options.spec) } : {}),
    timeoutSeconds: NEW_MACHINE_SECONDS + (several ? PER_MACHINE_REFRESH_SECONDS * options.machines : 0),
    triggers: options.triggers,
    dependsOn: options.dependsOn,
  });
}
