import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { EksPodIdentityAssociation } from "@cdktf/provider-aws/lib/eks-pod-identity-association";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import type { Construct } from "../cdk";

/**
 * An IAM role only one service account of an EKS cluster gets, through EKS Pod Identity (no node credentials, no OIDC
 * provider to manage). Creates `PodIdentityTrust`, `Role` and `PodIdentity` in `scope`.
 */
export function podIdentityRole(
  scope: Construct,
  options: { readonly clusterName: string; readonly namespace: string; readonly serviceAccount: string; readonly namePrefix: string },
): { role: IamRole; association: EksPodIdentityAssociation } {
  const trust = new DataAwsIamPolicyDocument(scope, "PodIdentityTrust", {
    statement: [
      { actions: ["sts:AssumeRole", "sts:TagSession"], principals: [{ type: "Service", identifiers: ["pods.eks.amazonaws.com"] }] },
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
