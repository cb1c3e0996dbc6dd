import { Construct, DataResource, Fn, type ITerraformDependable } from "../cdk";
import { compiledModulePath } from "../package-files";
import { invalidProp } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";

/** The health CLI this package ships (health/cli.ts, compiled): found from the package, not the shell's folder. */
export const HEALTH_CLI = compiledModulePath("health/cli.js");

/** PostDeployHealthCheck's defaults: the constructor and the props' JSDoc read these. */
export const POST_DEPLOY_HEALTH_CHECK_DEFAULTS = {
  timeoutSeconds: 180,
  burstRequests: 200,
  runOnEveryApply: true,
} as const;

export interface PostDeployHealthCheckProps {
  /** The service's base URL (usually the stack's `url` output value). */
  readonly url: string;
  /** Supplies the health and readiness paths. */
  readonly spec: NodeServiceSpec;
  /**
   * Fail unless this many distinct processes answer the burst (proof the cluster spreads load).
   * @default - no process count is required
   */
  readonly expectWorkers?: number;
  /**
   * Fail unless this many distinct hosts (pods) answer the burst.
   * @default - no host count is required
   */
  readonly expectHostnames?: number;
  /**
   * Fail unless this many distinct machines (the `machine` field of `GET /`) answer the burst: every machine
   * behind the load balancer is in rotation.
   * @default - no machine count is required
   */
  readonly expectMachines?: number;
  /**
   * Only wait until the load balancer at `url` sends a request to this machine (by the `machine` its answers
   * name, with `expectRelease` if given), instead of the full check: a rolling replacement's step.
   * @default - the full check
   */
  readonly waitForMachine?: string;
  /**
   * Wait until the service reports this release (its `/` answers `release`), and fail if any answer is older:
   * a deploy is healthy only once the new code answers.
   * @default - the release is not checked
   */
  readonly expectRelease?: string;
  /**
   * How long the service has to become healthy.
   * @default 180
   */
  readonly timeoutSeconds?: number;
  /**
   * Values whose change means new content was deployed, so the check runs again.
   * @default {}
   */
  readonly triggers?: Readonly<Record<string, string>>;
  /**
   * Run the check on every apply, also when nothing changed: a deploy that exits 0 then always means the
   * service is healthy now, not that it was healthy when it last changed. Turn off only for a stack whose
   * apply cannot reach the service.
   * @default true
   */
  readonly runOnEveryApply?: boolean;
  /**
   * Requests in the burst that counts processes, hosts and releases (one client: keep it within a per-client limit).
   * @default 200
   */
  readonly burstRequests?: number;
  /**
   * PEM file of the CA that signed an https URL's certificate (a private CA, such as the local stack's), on the
   * machine that deploys.
   * @default - the system's CAs
   */
  readonly caFile?: string;
  /**
   * Host name to ask for (`Host` header and TLS server name) when `url` holds another address, such as a load
   * balancer's own name in front of a host rule.
   * @default - the URL's host
   */
  readonly host?: string;
  /**
   * The health CLI that local-exec runs with `node`: absolute, since Terraform runs it from the stack's folder.
   * @default HEALTH_CLI - the one in this NodeScale package (its build)
   */
  readonly healthCli?: string;
  /**
   * What must be applied before the check runs.
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The largest burst one client may send through a per-client limit without a 429: the limit's burst plus the request
 * that is always allowed, at most the usual burst. The check is one client.
 */
export function healthBurstWithin(spec: NodeServiceSpec): number {
  return Math.min(POST_DEPLOY_HEALTH_CHECK_DEFAULTS.burstRequests, spec.clientLimits.burst + 1);
}

/**
 * Runs the health CLI through terraform_data + local-exec once the deploy is applied; a non-zero exit fails
 * `cdktf deploy`. It runs on every apply (and whenever `triggers`, the deployed content, change).
 */
export class PostDeployHealthCheck extends Construct {
  /** The terraform_data whose local-exec runs the check; depend on it to run after. */
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: PostDeployHealthCheckProps) {
    super(scope, id);
    const timeoutSeconds = props.timeoutSeconds ?? POST_DEPLOY_HEALTH_CHECK_DEFAULTS.timeoutSeconds;
    const triggers = props.triggers ?? {};
    const dependsOn = props.dependsOn ?? [];
    const healthCli = props.healthCli ?? HEALTH_CLI;
    const runOnEveryApply = props.runOnEveryApply ?? POST_DEPLOY_HEALTH_CHECK_DEFAULTS.runOnEveryApply;
    const burstRequests = props.burstRequests ?? POST_DEPLOY_HEALTH_CHECK_DEFAULTS.burstRequests;
    if (props.caFile !== undefined && !props.url.startsWith("https://") && !props.url.includes("${")) {
      invalidProp("PostDeployHealthCheck", "caFile", props.caFile, "applies to an https url only");
    }
    if (!healthCli.startsWith("/")) invalidProp("PostDeployHealthCheck", "healthCli", healthCli, "must be an absolute path");
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
      invalidProp("PostDeployHealthCheck", "timeoutSeconds", timeoutSeconds, "must be a whole number of seconds >= 1");
    }
    for (const [field, value] of [
      ["expectWorkers", props.expectWorkers],
      ["expectHostnames", props.expectHostnames],
      ["expectMachines", props.expectMachines],
      ["burstRequests", burstRequests],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        invalidProp("PostDeployHealthCheck", field, value, "must be a whole number >= 1");
      }
    }
    const args = [
      `--url "$NODESCALE_URL"`,
      `--timeout ${timeoutSeconds}`,
      `--health-path ${props.spec.healthPath}`,
      `--ready-path ${props.spec.readyPath}`,
      ...(burstRequests !== POST_DEPLOY_HEALTH_CHECK_DEFAULTS.burstRequests ? [`--requests ${burstRequests}`] : []),
      ...(props.expectWorkers !== undefined ? [`--expect-workers ${props.expectWorkers}`] : []),
      ...(props.expectHostnames !== undefined ? [`--expect-hostnames ${props.expectHostnames}`] : []),
      ...(props.expectMachines !== undefined ? [`--expect-machines ${props.expectMachines}`] : []),
      ...(props.expectRelease !== undefined ? [`--expect-release "$NODESCALE_RELEASE"`] : []),
      ...(props.waitForMachine !== undefined ? [`--wait-for-machine "$NODESCALE_MACHINE"`] : []),
      ...(props.caFile !== undefined ? [`--ca "$NODESCALE_CA"`] : []),
      ...(props.host !== undefined ? [`--host "$NODESCALE_HOST"`] : []),
    ];
    this.resource = new DataResource(this, "Run", {
      input: { url: props.url },
      triggersReplace: {
        url: props.url,
        ...(props.expectRelease !== undefined ? { release: props.expectRelease } : {}),
        ...triggers,
        // A new value on every apply, so "No changes" can never skip the check.
        ...(runOnEveryApply ? { apply: Fn.timestamp() } : {}),
      },
      dependsOn,
      provisioners: [
        {
          type: "local-exec",
          // The URL and the CLI's path travel in the environment, never spliced into the shell text.
          environment: {
            NODESCALE_HEALTH_CLI: healthCli,
            NODESCALE_URL: props.url,
            ...(props.expectRelease !== undefined ? { NODESCALE_RELEASE: props.expectRelease } : {}),
            ...(props.waitForMachine !== undefined ? { NODESCALE_MACHINE: props.waitForMachine } : {}),
            ...(props.caFile !== undefined ? { NODESCALE_CA: props.caFile } : {}),
            ...(props.host !== undefined ? { NODESCALE_HOST: props.host } : {}),
          },
          command: `node "$NODESCALE_HEALTH_CLI" ${args.join(" ")}`,
        },
      ],
    });
  }
}
