import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { DataAwsRegion } from "@cdktf/provider-aws/lib/data-aws-region";
import { EksPodIdentityAssociation } from "@cdktf/provider-aws/lib/eks-pod-identity-association";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import type { Construct } from "../cdk";

/**
 * An IAM role only one service account of an EKS cluster gets, through EKS Pod Identity (no node credentials, no OIDC
 * provider to manage). Creates `PodIdentityTrust`, `Role` and `PodIdentity` in `scope`. The trust holds only for
 * this account's pods of this cluster (`aws:SourceAccount`, `aws:SourceArn`): an association made on another cluster
 * (or by another account) cannot hand the role out.
 */
export function podIdentityRole(
  scope: Construct,
  options: { readonly clusterName: string; readonly namespace: string; readonly serviceAccount: string; readonly namePrefix: string },
): { role: IamRole; association: EksPodIdentityAssociation } {
  const account = new DataAwsCallerIdentity(scope, "PodIdentityAccount");
  const region = new DataAwsRegion(scope, "PodIdentityRegion");
  const partition = new DataAwsPartition(scope, "PodIdentityPartition");
  const clusterArn = `arn:${partition.partition}:eks:${region.region}:${account.accountId}:cluster/${options.clusterName}`;
  const trust = new DataAwsIamPolicyDocument(scope, "PodIdentityTrust", {
    statement: [
      {
        actions: ["sts:AssumeRole", "sts:TagSession"],
        principals: [{ type: "Service", identifiers: ["pods.eks.amazonaws.com"] }],
        condition: [
          { test: "StringEquals", variable: "aws:SourceAccount", values: [account.accountId] },
          { test: "ArnEquals", variable: "aws:SourceArn", values: [clusterArn] },
        ],
      },
    ],
  });
  const role = new IamRole(scope, "Role", { namePrefix: options.namePrefix, assumeRolePolicy: trust.json });
  const association = new EksPodIdentityAssociation(scope, "PodIdentity", {
    clusterName: options.clusterName,
    namespace: options.namespace,
    serviceAccount: options.serviceAccount,
    roleArn: role.arn,
  });
  return { role, association };
}
