import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import type { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { Release } from "@cdktf/provider-helm/lib/release";
import { Construct, type ITerraformDependable } from "../cdk";
import { podIdentityRole } from "./pod-identity";

/**
 * Cluster Autoscaler chart 9.59.0 (app 1.35.0, for Kubernetes 1.35) from https://kubernetes.github.io/autoscaler
 * (kubernetes/autoscaler cluster-autoscaler/charts/cluster-autoscaler/Chart.yaml, commit 55c37cd5, 2026-08-22).
 * Its minor must follow the cluster's: raise both together.
 */
export const CLUSTER_AUTOSCALER_CHART_VERSION = "9.59.0";
/** The autoscaler release that chart runs. */
export const CLUSTER_AUTOSCALER_APP_VERSION = "1.35.0";
export const CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler";

export interface ClusterAutoscalerProps {
  /** The EKS cluster's name: the node groups' Auto Scaling groups carry `k8s.io/cluster-autoscaler/<name>: owned`. */
  readonly clusterName: string;
  readonly region: string;
  /** Name prefix for the IAM role. */
  readonly name: string;
  /**
   * What must exist first (the node group and the Pod Identity agent).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * Nodes that follow the pods: when the HPA adds pods that do not fit, the Cluster Autoscaler grows the managed node
 * group (up to its maxSize), and shrinks it when nodes stay underused. Its IAM permissions are upstream's "full
 * features" policy with the two writing actions limited, as upstream recommends, to Auto Scaling groups tagged for
 * this cluster (EKS tags its managed node groups' groups so); the role reaches only its service account, through
 * Pod Identity.
 */
export class ClusterAutoscaler extends Construct {
  readonly role: IamRole;
  readonly policy: IamRolePolicy;
  readonly release: Release;

  constructor(scope: Construct, id: string, props: ClusterAutoscalerProps) {
    super(scope, id);
    const identity = podIdentityRole(this, {
      clusterName: props.clusterName,
      namespace: "kube-system",
      serviceAccount: CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
      namePrefix: `${props.name}-autoscaler-`,
    });
    this.role = identity.role;
    const permissions = new DataAwsIamPolicyDocument(this, "Permissions", {
      statement: [
        {
          sid: "Discover",
          actions: [
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup",
          ],
          resources: ["*"],
        },
        {
          sid: "ScaleThisClusterOnly",
          actions: ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
          resources: ["*"],
          condition: [
            { test: "StringEquals", variable: `aws:ResourceTag/k8s.io/cluster-autoscaler/${props.clusterName}`, values: ["owned"] },
          ],
        },
      ],
    });
    this.policy = new IamRolePolicy(this, "Policy", { role: this.role.id, policy: permissions.json });
    const values = {
      cloudProvider: "aws",
      awsRegion: props.region,
      autoDiscovery: { clusterName: props.clusterName },
      rbac: { serviceAccount: { create: true, name: CLUSTER_AUTOSCALER_SERVICE_ACCOUNT } },
      extraArgs: {
        // Never evicts pods the HPA's floor needs elsewhere without room: PDBs are respected; balance across zones.
        "balance-similar-node-groups": true,
        "skip-nodes-with-system-pods": false,
        "scale-down-unneeded-time": "10m",
      },
      resources: { requests: { cpu: "100m", memory: "300Mi" } },
    };
    this.release = new Release(this, "Release", {
      name: "cluster-autoscaler",
      namespace: "kube-system",
      repository: "https://kubernetes.github.io/autoscaler",
      chart: "cluster-autoscaler",
      version: CLUSTER_AUTOSCALER_CHART_VERSION,
      atomic: true,
      wait: true,
      values: [JSON.stringify(values)],
      dependsOn: [...(props.dependsOn ?? []), this.policy, identity.association],
    });
  }
}
