import type { EksPodIdentityAssociation } from "@cdktf/provider-aws/lib/eks-pod-identity-association";
import { IamPolicy } from "@cdktf/provider-aws/lib/iam-policy";
import type { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { Release } from "@cdktf/provider-helm/lib/release";
import { ALB_TLS_POLICY } from "../acm-certificate";
import { Construct, type ITerraformDependable } from "../cdk";
import { HSTS_MAX_AGE_SECONDS } from "../service/rules";
import type { NodeServiceSpec } from "../service/spec";
import { templateText } from "../template";
import { podIdentityRole } from "./pod-identity";

/**
 * The AWS Load Balancer Controller: chart 3.5.0 (app v3.5.0) from https://aws.github.io/eks-charts
 * (aws/eks-charts stable/aws-load-balancer-controller/Chart.yaml). Its IAM policy is the one the project publishes
 * for that release, verbatim: kubernetes-sigs/aws-load-balancer-controller v3.5.0 (commit 11eb202c),
 * docs/install/iam_policy.json, in templates/aws/.
 */
export const AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION = "3.5.0";
/** The IngressClass the controller's chart creates: Ingresses with it become ALBs. */
export const ALB_INGRESS_CLASS = "alb";
/** Where the controller runs (and its service account, which Pod Identity binds to its role). */
export const ALB_CONTROLLER_NAMESPACE = "kube-system";
export const ALB_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller";

/** The controller's IAM policy, as published upstream for the pinned release. */
export function albControllerPolicyDocument(): string {
  return templateText("aws/aws-load-balancer-controller-iam-policy.json");
}

export interface AwsLoadBalancerControllerProps {
  /** The EKS cluster's name. */
  readonly clusterName: string;
  /** Its region and VPC: given explicitly, because the controller's pods cannot reach the node's metadata (hop limit 1). */
  readonly region: string;
  readonly vpcId: string;
  /** Name prefix for the IAM role and policy. */
  readonly name: string;
  /**
   * What must exist first (the node group and the Pod Identity agent add-on).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The AWS Load Balancer Controller (maintained by AWS; the retired ingress-nginx's replacement on EKS): Ingresses of
 * class `alb` become Application Load Balancers sending to pod IPs. Its AWS access is the upstream policy on a role
 * only its service account gets, through EKS Pod Identity (no node credentials, no OIDC provider to manage).
 */
export class AwsLoadBalancerController extends Construct {
  /** The role the controller's pods assume (through Pod Identity). */
  readonly role: IamRole;
  /** The upstream IAM policy, attached to the role. */
  readonly policy: IamPolicy;
  /** Binds the controller's service account to the role. */
  readonly podIdentity: EksPodIdentityAssociation;
  /** The Helm release. */
  readonly release: Release;

  constructor(scope: Construct, id: string, props: AwsLoadBalancerControllerProps) {
    super(scope, id);
    const dependsOn = props.dependsOn ?? [];
    const identity = podIdentityRole(this, {
      clusterName: props.clusterName,
      namespace: ALB_CONTROLLER_NAMESPACE,
      serviceAccount: ALB_CONTROLLER_SERVICE_ACCOUNT,
      namePrefix: `${props.name}-alb-`,
    });
    this.role = identity.role;
    this.podIdentity = identity.association;
    this.policy = new IamPolicy(this, "Policy", {
      namePrefix: `${props.name}-alb-controller-`,
      description: "AWS Load Balancer Controller v3.5.0, as published upstream (docs/install/iam_policy.json)",
      policy: albControllerPolicyDocument(),
    });
    const attachment = new IamRolePolicyAttachment(this, "PolicyAttachment", { role: this.role.name, policyArn: this.policy.arn });
    const values = {
      clusterName: props.clusterName,
      region: props.region,
      vpcId: props.vpcId,
      replicaCount: 2,
      serviceAccount: { create: true, name: ALB_CONTROLLER_SERVICE_ACCOUNT },
      ingressClass: ALB_INGRESS_CLASS,
      createIngressClassResource: true,
      podDisruptionBudget: { maxUnavailable: 1 },
      // Services of type LoadBalancer stay with whatever the platform chose; this controller only does Ingresses here.
      enableServiceMutatorWebhook: false,
      resources: { requests: { cpu: "100m", memory: "128Mi" } },
    };
    this.release = new Release(this, "Release", {
      name: "aws-load-balancer-controller",
      namespace: ALB_CONTROLLER_NAMESPACE,
      repository: "https://aws.github.io/eks-charts",
      chart: "aws-load-balancer-controller",
      version: AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
      atomic: true,
      wait: true,
      timeout: 900,
      values: [JSON.stringify(values)],
      dependsOn: [...dependsOn, attachment, this.podIdentity],
    });
  }
}

/**
 * The workload Ingress's annotations for the controller: an internet-facing ALB sending to pod IPs, health-checked on
 * the ready path, its idle timeout under Node's keep-alive, targets drained for as long as a pod may still finish
 * requests. With a certificate: HTTPS on 443 (TLS 1.3 policy, HSTS from the listener), HTTP only redirects.
 */
export function albIngressAnnotations(spec: NodeServiceSpec, preStopSeconds: number, certificateArn?: string): Record<string, string> {
  const prefix = "alb.ingress.kubernetes.io";
  return {
    [`${prefix}/scheme`]: "internet-facing",
    [`${prefix}/target-type`]: "ip",
    [`${prefix}/healthcheck-path`]: spec.readyPath,
    [`${prefix}/healthcheck-interval-seconds`]: "10",
    [`${prefix}/healthy-threshold-count`]: "2",
    [`${prefix}/load-balancer-attributes`]: `idle_timeout.timeout_seconds=${spec.upstreamIdleTimeoutSeconds},routing.http.drop_invalid_header_fields.enabled=true`,
    [`${prefix}/target-group-attributes`]: `deregistration_delay.timeout_seconds=${spec.terminationGracePeriodSeconds(preStopSeconds)}`,
    ...(certificateArn === undefined
      ? { [`${prefix}/listen-ports`]: JSON.stringify([{ HTTP: 80 }]) }
      : {
          [`${prefix}/listen-ports`]: JSON.stringify([{ HTTP: 80 }, { HTTPS: 443 }]),
          [`${prefix}/ssl-redirect`]: "443",
          [`${prefix}/certificate-arn`]: certificateArn,
          [`${prefix}/ssl-policy`]: ALB_TLS_POLICY,
          [`${prefix}/listener-attributes.HTTPS-443`]: `routing.http.response.strict_transport_security.header_value=max-age=${HSTS_MAX_AGE_SECONDS}`,
        }),
  };
}
