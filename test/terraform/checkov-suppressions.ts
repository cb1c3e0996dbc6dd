// Checkov findings we leave in place, each by check ID and resource, with the reason. Checkov 3.3.30 reads no inline
// suppression from Terraform JSON (cdktf's output), so they are kept here, in one list, and in docs/terraform.md.

import type { StackName } from "../helpers/terraform";

export interface Suppression {
  /** Checkov's check ID. */
  readonly id: string;
  /** The resource, as "type.ConstructName" (cdktf's hash suffix left out). */
  readonly resource: RegExp;
  /** Only in these stacks (default: every stack). */
  readonly stacks?: readonly StackName[];
  /** Why the finding stays. */
  readonly reason: string;
}

const RELEASES_BUCKET = /^aws_s3_bucket\.(Host|Group)_Releases_Bucket$/;
const LOG_GROUPS = /^resource\.(Logs_LogGroup|Cluster_ControlPlaneLogs|Cluster_FlowLogGroup)$/;
const WEB_PORT_80 = /^resource\.(Host_HttpV4|Group_LoadBalancerHttpV4|Group_MachinesFromLoadBalancer)$/;

export const CHECKOV_SUPPRESSIONS: readonly Suppression[] = [
  // The web front: a web service answers the internet on 80 (redirect to HTTPS, ACME's HTTP-01) and 443.
  {
    id: "CKV_AWS_260",
    resource: WEB_PORT_80,
    reason: "a public web service: port 80 redirects to HTTPS and answers ACME's HTTP-01 challenge",
  },
  {
    id: "CKV_DIO_4",
    resource: /^resource\.(Host|Group)_Firewall$/,
    reason: "a public web service: 80 and 443 are open to all by design; SSH only from vm.digitalocean.sshCidrs",
  },
  {
    id: "CKV_AWS_88",
    resource: /^resource\.(Host_Instance|Group_LaunchTemplate)$/,
    reason:
      "one machine serves on its Elastic IP; group machines need a public address for egress (no NAT gateway); ingress is limited by security group",
  },
  {
    id: "CKV_AWS_2",
    resource: /^resource\.Group_Http$/,
    reason: "without service.domain there is no certificate to serve HTTPS with; with one, port 80 redirects to HTTPS",
  },
  {
    id: "CKV_AWS_103",
    resource: /^aws_lb_listener\.Group_Http$/,
    reason: "the plain-HTTP listener of a group without service.domain has no TLS to configure",
  },
  { id: "CKV2_AWS_20", resource: /^aws_lb\.Group_LoadBalancer$/, reason: "without service.domain there is no HTTPS to redirect to" },
  {
    id: "CKV_AWS_378",
    resource: /^aws_lb_target_group\.Group_Machines$/,
    reason: "the load balancer reaches Nginx on the machines over the VPC; TLS ends at the load balancer",
  },
  // Choices left to the user, with cost in mind.
  {
    id: "CKV_AWS_338",
    resource: LOG_GROUPS,
    reason: "retention is the user's choice (vm.aws.logRetentionDays); a year is not every service's need",
  },
  {
    id: "CKV_AWS_158",
    resource: LOG_GROUPS,
    reason: "CloudWatch Logs encrypts at rest with its own keys; a customer KMS key adds cost and a key policy to run",
  },
  {
    id: "CKV_AWS_145",
    resource: RELEASES_BUCKET,
    reason: "releases are encrypted with SSE-S3 (the bucket's default encryption); they hold app code, secrets never go there",
  },
  {
    id: "CKV_AWS_144",
    resource: RELEASES_BUCKET,
    reason: "the releases are rebuilt from source by any deploy; replicating them to another region buys nothing",
  },
  {
    id: "CKV_AWS_18",
    resource: RELEASES_BUCKET,
    reason: "only the machines' role reads the bucket (its policy also refuses plain HTTP); access logs would need a second bucket",
  },
  { id: "CKV2_AWS_62", resource: RELEASES_BUCKET, reason: "nothing consumes events from the releases bucket" },
  { id: "CKV2_AWS_61", resource: RELEASES_BUCKET, reason: "release objects are few, named by their SHA-256 and needed for roll back" },
  {
    id: "CKV2_AWS_11",
    resource: /^aws_vpc\.(Host|Group)_Network_Vpc$/,
    reason: "flow logs cost per GB; the VM stacks log requests in Nginx instead (the EKS VPC has flow logs on)",
  },
  {
    id: "CKV_AWS_91",
    resource: /^resource\.Group_LoadBalancer$/,
    reason: "access logs need a bucket with a log-delivery policy; Nginx on each machine logs every request",
  },
  {
    id: "CKV_AWS_150",
    resource: /^resource\.Group_LoadBalancer$/,
    reason: "cdktf destroy must be able to remove the stack; the load balancer holds no data",
  },
  {
    id: "CKV2_AWS_28",
    resource: /^aws_lb\.Group_LoadBalancer$/,
    reason: "a WAF is priced per rule and request; Nginx applies per-client rate and connection limits (service.clientLimits)",
  },
  {
    id: "CKV_AWS_135",
    resource: /^resource\.Host_Instance$/,
    reason: "the Nitro types (the default t3.small) are always EBS-optimized; setting it fails on types that cannot be",
  },
  {
    id: "CKV2_AWS_34",
    resource: /^aws_ssm_parameter\.Logs_AgentConfig$/,
    reason: "the CloudWatch agent's configuration holds no secret (file paths and log group names)",
  },
  {
    id: "CKV_AWS_394",
    resource: /^data\.(Host_Network|Group_Network|Cluster)_Zones$/,
    reason: "subnets take their zone at creation; a zone AWS adds later changes nothing that exists",
  },
  {
    id: "CKV_DIO_2",
    resource: /^resource\.(Host_Droplet|Group_Droplet\d+)$/,
    reason: "no SSH key unless the user lists one (vm.digitalocean.sshKeyFingerprints): releases arrive in user data",
  },
  // EKS.
  {
    id: "CKV2_AWS_64",
    resource: /^aws_kms_key\.Cluster_SecretsKey$/,
    reason: "the default key policy (the account's administrators) is the policy EKS's secrets encryption needs",
  },
  {
    id: "CKV_AWS_111",
    resource: /^data\.(Host|Group)_Machine_SsmAgent$/,
    reason:
      "the SSM agent's own calls (AmazonSSMManagedInstanceCore's, less every ssm:GetParameter*): its messaging and association-status actions name no resource NodeScale could scope them to",
  },
  {
    id: "CKV_AWS_356",
    resource: /^data\.(Host|Group)_Machine_SsmAgent$/,
    reason:
      "as CKV_AWS_111: the SSM agent's actions as AWS's managed policy grants them, on *, with no parameter or secret read among them",
  },
  {
    id: "CKV_AWS_356",
    resource: /^data\.NodeAutoscaler_Permissions$/,
    reason: "the cluster autoscaler's upstream policy: its Describe* calls take no resource ARN",
  },
  // The workload (every Kubernetes stack).
  {
    id: "CKV_K8S_11",
    resource: /^resource\.Workload_Deployment$/,
    reason: "no CPU limit by design: a limit throttles Node.js's event loop under bursts; requests size the scheduling and the HPA",
  },
  {
    id: "CKV_K8S_15",
    resource: /^resource\.Workload_Deployment$/,
    reason: "images are pinned (digest or release tag) and immutable, so IfNotPresent is exact and spares a registry round trip",
  },
  {
    id: "CKV_K8S_43",
    resource: /^resource\.Workload_Deployment$/,
    stacks: ["k8s"],
    reason: "the user's pinned image (config `image`) may be a tag; NodeScale's own builds are by digest",
  },
];
