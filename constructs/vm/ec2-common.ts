import { gzipSync } from "node:zlib";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { DataAwsRegion } from "@cdktf/provider-aws/lib/data-aws-region";
import { DefaultSecurityGroup } from "@cdktf/provider-aws/lib/default-security-group";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
import { Route } from "@cdktf/provider-aws/lib/route";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { Construct, Fn } from "../cdk";
import { InvalidPropError, invalidProp } from "../service/errors";
import type { SecretRef } from "../service/secrets";
import { DEFAULT_VM_MODE } from "./plan";

/**
 * What the SSM agent needs for Session Manager and for the rollout (State Manager associations, Run Command): the
 * actions of AWS's AmazonSSMManagedInstanceCore without `ssm:GetParameter(s)` on `*` (which would let the machine read
 * every parameter in the account and region, SecureStrings included), and without Patch Manager's
 * `ssm:GetDeployablePatchSnapshotForInstance`, which NodeScale does not use. Distributor's two stay: the logs install
 * the CloudWatch agent through AWS-ConfigureAWSPackage. The machine's own secrets (and the logs' agent configuration)
 * are granted apart, by exact ARN.
 */
export const SSM_AGENT_ACTIONS = {
  ssm: [
    "ssm:DescribeAssociation",
    "ssm:DescribeDocument",
    "ssm:GetDocument",
    "ssm:GetManifest",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult",
    "ssm:PutInventory",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
  ],
  ssmmessages: [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
  ],
  ec2messages: [
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
  ],
} as const;

/** Canonical's account, which publishes the official Ubuntu AMIs. */
export const CANONICAL_OWNER_ID = "099720109477";
/** EC2 user data is limited to 16 KiB before base64. */
export const EC2_USER_DATA_LIMIT_BYTES = 16 * 1024;

/** The provision script as EC2 user data: gzipped (cloud-init unpacks it), base64, refused over the limit. */
export function ec2UserDataBase64(owner: string, script: string): string {
  const gzipped = gzipSync(Buffer.from(script, "utf8"), { level: 9 });
  if (gzipped.length > EC2_USER_DATA_LIMIT_BYTES) {
    throw new InvalidPropError(
      `${owner} user data: ${gzipped.length} bytes gzipped is over EC2's limit of ${EC2_USER_DATA_LIMIT_BYTES} bytes`,
    );
  }
  return gzipped.toString("base64");
}

/** Defaults of Ec2NodeHost and Ec2NodeGroup: their constructors, props' JSDoc and the config schema read these. */
export const EC2_MACHINE_DEFAULTS = {
  mode: DEFAULT_VM_MODE,
  instanceType: "t3.small",
  rootVolumeGiB: 20,
  vpcCidr: "10.30.0.0/16",
  clientLimits: true,
} as const;

/** Ec2NodeGroup's own defaults, beside EC2_MACHINE_DEFAULTS. */
export const EC2_NODE_GROUP_DEFAULTS = {
  machines: 2,
  targetCpuPercent: 60,
  zones: 2,
  deletionProtection: false,
} as const;

export interface PublicNetworkProps {
  /** Name prefix for tags. */
  readonly name: string;
  /**
   * The VPC's CIDR; each subnet is a /(prefix + 8) carved from it with Terraform's cidrsubnet().
   * @default "10.30.0.0/16"
   */
  readonly cidr?: string;
  /**
   * Public subnets, one per availability zone (zones from the region's data source, in order).
   * @default 1
   */
  readonly zones?: number;
}

/** A VPC with an internet gateway and one public subnet per zone, carved with cidrsubnet(), not string surgery. */
export class PublicNetwork extends Construct {
  readonly vpc: Vpc;
  readonly subnets: Subnet[];
  readonly zones: DataAwsAvailabilityZones;

  constructor(scope: Construct, id: string, props: PublicNetworkProps) {
    super(scope, id);
    const cidr = props.cidr ?? EC2_MACHINE_DEFAULTS.vpcCidr;
    const zones = props.zones ?? 1;
    const prefix = Number(cidr.split("/")[1]);
    if (!Number.isInteger(prefix) || prefix > 24) {
      invalidProp("PublicNetwork", "cidr", cidr, "must be an IPv4 CIDR of /24 or larger, so that /(prefix + 8) subnets fit");
    }
    const tags = { Name: props.name, "nodescale:service": props.name };
    this.zones = new DataAwsAvailabilityZones(this, "Zones", { state: "available" });
    this.vpc = new Vpc(this, "Vpc", { cidrBlock: cidr, enableDnsHostnames: true, enableDnsSupport: true, tags });
    // The VPC's default security group, which nothing here uses, allows all traffic between its members and all
    // egress until told otherwise: adopted with no rules, it allows nothing (Checkov CKV2_AWS_12).
    new DefaultSecurityGroup(this, "DefaultSecurityGroup", { vpcId: this.vpc.id, tags });
    const igw = new InternetGateway(this, "Igw", { vpcId: this.vpc.id, tags });
    const routes = new RouteTable(this, "PublicRoutes", { vpcId: this.vpc.id, tags });
    // A route of its own, not an inline `route` block: Terraform JSON must name every attribute of an inline block,
    // and newer aws providers add attributes (`odb_network_arn`), which `terraform validate` then requires.
    new Route(this, "PublicDefaultRoute", { routeTableId: routes.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id });
    this.subnets = Array.from({ length: zones }, (_, i) => {
      const subnet = new Subnet(this, zones === 1 ? "PublicSubnet" : `PublicSubnet${i}`, {
        vpcId: this.vpc.id,
        cidrBlock: Fn.cidrsubnet(this.vpc.cidrBlock, 8, i),
        availabilityZone: Fn.element(this.zones.names, i),
        mapPublicIpOnLaunch: false,
        tags: { ...tags, Name: `${props.name}-public-${i}` },
      });
      new RouteTableAssociation(this, zones === 1 ? "PublicRoutesAssociation" : `PublicRoutesAssociation${i}`, {
        subnetId: subnet.id,
        routeTableId: routes.id,
      });
      return subnet;
    });
  }
}

export interface MachineRoleProps {
  readonly name: string;
  /** ARN pattern of the release objects the machines may read. */
  readonly releasesArn: string;
  /**
   * ARN pattern of the machine files (the agent) the machines may read.
   * @default - none
   */
  readonly agentArn?: string;
  readonly tags: Record<string, string>;
  /**
   * The service's secrets: the role may read exactly the SSM parameters and Secrets Manager secrets named here.
   * @default {}
   */
  readonly secrets?: Readonly<Record<string, SecretRef>>;
  /**
   * The S3 object that keeps certbot's folder across machine replacements (one machine ending TLS for a domain).
   * @default - none
   */
  readonly tlsStateArn?: string;
}

/** The machines' role: SSM (no SSH needed), read access to their own releases and secrets, nothing else. */
export class MachineRole extends Construct {
  readonly role: IamRole;
  readonly profile: IamInstanceProfile;
  /** Read and write access to exactly the object that keeps certbot's folder (one machine with a domain). */
  readonly tlsStatePolicy?: IamRolePolicy;
  /** Read access to exactly the service's secrets; undefined when it has none a role reads. */
  readonly secretsPolicy?: IamRolePolicy;

  constructor(scope: Construct, id: string, props: MachineRoleProps) {
    super(scope, id);
    const assume = new DataAwsIamPolicyDocument(this, "AssumeEc2", {
      statement: [{ actions: ["sts:AssumeRole"], principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }] }],
    });
    this.role = new IamRole(this, "Role", { namePrefix: `${props.name}-`, assumeRolePolicy: assume.json, tags: props.tags });
    // The SSM agent's own calls (Session Manager, the rollout's association), scoped: no parameter reads on `*`.
    const ssmAgent = new DataAwsIamPolicyDocument(this, "SsmAgent", {
      statement: [
        { sid: "SsmAgent", actions: [...SSM_AGENT_ACTIONS.ssm], resources: ["*"] },
        { sid: "SessionManager", actions: [...SSM_AGENT_ACTIONS.ssmmessages], resources: ["*"] },
        { sid: "RunCommand", actions: [...SSM_AGENT_ACTIONS.ec2messages], resources: ["*"] },
      ],
    });
    new IamRolePolicy(this, "SsmAgentPolicy", { role: this.role.id, policy: ssmAgent.json });
    const readReleases = new DataAwsIamPolicyDocument(this, "ReadReleases", {
      statement: [{ actions: ["s3:GetObject"], resources: [props.releasesArn, ...(props.agentArn !== undefined ? [props.agentArn] : [])] }],
    });
    new IamRolePolicy(this, "ReadReleasesPolicy", { role: this.role.id, policy: readReleases.json });
    if (props.tlsStateArn !== undefined) {
      const tlsState = new DataAwsIamPolicyDocument(this, "TlsState", {
        statement: [{ actions: ["s3:GetObject", "s3:PutObject"], resources: [props.tlsStateArn] }],
      });
      this.tlsStatePolicy = new IamRolePolicy(this, "TlsStatePolicy", { role: this.role.id, policy: tlsState.json });
    }
    const refs = Object.values(props.secrets ?? {});
    const parameters = refs.flatMap((r) => (r.kind === "ssm" ? [r.name] : []));
    const managed = refs.flatMap((r) => (r.kind === "secretsmanager" ? [r.arn] : []));
    if (parameters.length + managed.length > 0) {
      const account = new DataAwsCallerIdentity(this, "Account");
      const region = new DataAwsRegion(this, "Region");
      const partition = new DataAwsPartition(this, "Partition");
      // Exactly the referenced parameters and secrets: no wildcard, so the machine can read nothing else.
      const readSecrets = new DataAwsIamPolicyDocument(this, "ReadSecrets", {
        statement: [
          ...(parameters.length > 0
            ? [
                {
                  actions: ["ssm:GetParameter"],
                  resources: [...new Set(parameters)].map(
                    (name) => `arn:${partition.partition}:ssm:${region.region}:${account.accountId}:parameter${name}`,
                  ),
                },
              ]
            : []),
          ...(managed.length > 0 ? [{ actions: ["secretsmanager:GetSecretValue"], resources: [...new Set(managed)] }] : []),
        ],
      });
      this.secretsPolicy = new IamRolePolicy(this, "ReadSecretsPolicy", { role: this.role.id, policy: readSecrets.json });
    }
    this.profile = new IamInstanceProfile(this, "Profile", { namePrefix: `${props.name}-`, role: this.role.name, tags: props.tags });
  }
}

/** The newest Ubuntu 24.04 LTS AMI, looked up from Canonical by owner and name. */
export function ubuntuAmi(scope: Construct): DataAwsAmi {
  return new DataAwsAmi(scope, "Ubuntu", {
    mostRecent: true,
    owners: [CANONICAL_OWNER_ID],
    filter: [
      { name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"] },
      { name: "virtualization-type", values: ["hvm"] },
    ],
  });
}
