import { gzipSync } from "node:zlib";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { Eip } from "@cdktf/provider-aws/lib/eip";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { Instance } from "@cdktf/provider-aws/lib/instance";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { SsmAssociation } from "@cdktf/provider-aws/lib/ssm-association";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { Construct } from "../cdk";
import { InvalidPropError, invalidProp } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import type { AppBundle } from "./bundle";
import { BUNDLE_SHA_TAG, BUNDLE_URI_TAG, s3BundleSource } from "./bundle-source";
import { type ProcessPlan, processPlan, type VmMode } from "./plan";
import { renderProvisionScript, VM_BASE } from "./provision";
import { ReleaseBucket } from "./release-bucket";
import { assertSshNotWorldOpen } from "./ssh";

/** EC2 user data is limited to 16 KiB before base64. */
export const EC2_USER_DATA_LIMIT_BYTES = 16 * 1024;
/** Canonical's account, which publishes the official Ubuntu AMIs. */
export const CANONICAL_OWNER_ID = "099720109477";

export interface Ec2NodeHostProps {
  readonly spec: NodeServiceSpec;
  /** The built app, shipped through a private S3 bucket. */
  readonly bundle: AppBundle;
  /**
   * PM2 cluster mode on one port, or fork mode with one process per port.
   * @default "cluster"
   */
  readonly mode?: VmMode;
  /**
   * EC2 instance type.
   * @default "t3.small"
   */
  readonly instanceType?: string;
  /**
   * CIDRs allowed to reach SSH (port 22); none by default: use SSM Session Manager instead.
   * @default []
   */
  readonly sshCidrs?: readonly string[];
  /**
   * Place the instance in an existing VPC (then `subnetId` is required) instead of creating one.
   * @default - a new VPC with one public subnet
   */
  readonly vpcId?: string;
  /**
   * Public subnet for the instance when `vpcId` is given.
   * @default - the new VPC's public subnet
   */
  readonly subnetId?: string;
  /**
   * Root volume size.
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * CIDR of the VPC created when `vpcId` is not given.
   * @default "10.30.0.0/16"
   */
  readonly vpcCidr?: string;
}

/**
 * One Ubuntu LTS EC2 instance running Nginx in front of PM2: hardened defaults (IMDSv2, encrypted gp3,
 * SSM instead of SSH), an Elastic IP, and app releases from S3 rolled out in place through SSM.
 */
export class Ec2NodeHost extends Construct {
  readonly instance: Instance;
  readonly eip: Eip;
  readonly plan: ProcessPlan;
  readonly userData: string;

  constructor(scope: Construct, id: string, props: Ec2NodeHostProps) {
    super(scope, id);
    const mode = props.mode ?? "cluster";
    const instanceType = props.instanceType ?? "t3.small";
    const sshCidrs = props.sshCidrs ?? [];
    const rootVolumeGiB = props.rootVolumeGiB ?? 20;
    const vpcCidr = props.vpcCidr ?? "10.30.0.0/16";
    if ((props.vpcId === undefined) !== (props.subnetId === undefined)) {
      invalidProp(
        "Ec2NodeHost",
        "vpcId/subnetId",
        { vpcId: props.vpcId, subnetId: props.subnetId },
        "give both (an existing VPC and its public subnet) or neither",
      );
    }
    assertSshNotWorldOpen("Ec2NodeHost", sshCidrs);
    const spec = props.spec;
    this.plan = processPlan(spec, mode);
    const name = spec.name;
    const tags = { Name: name, "nodescale:service": name };

    const script = renderProvisionScript(spec, this.plan, { bundleSource: s3BundleSource() });
    const gzipped = gzipSync(Buffer.from(script, "utf8"), { level: 9 });
    if (gzipped.length > EC2_USER_DATA_LIMIT_BYTES) {
      throw new InvalidPropError(
        `Ec2NodeHost user data: ${gzipped.length} bytes gzipped is over EC2's limit of ${EC2_USER_DATA_LIMIT_BYTES} bytes`,
      );
    }
    this.userData = script;

    let vpcId = props.vpcId;
    let subnetId = props.subnetId;
    if (vpcId === undefined) {
      const zones = new DataAwsAvailabilityZones(this, "Zones", { state: "available" });
      const vpc = new Vpc(this, "Vpc", { cidrBlock: vpcCidr, enableDnsHostnames: true, enableDnsSupport: true, tags });
      const igw = new InternetGateway(this, "Igw", { vpcId: vpc.id, tags });
      const subnet = new Subnet(this, "PublicSubnet", {
        vpcId: vpc.id,
        cidrBlock: vpcCidr.replace(/\.\d+\.\d+\/\d+$/, ".0.0/24"),
        availabilityZone: `\${${zones.fqn}.names[0]}`,
        mapPublicIpOnLaunch: false,
        tags: { ...tags, Name: `${name}-public` },
      });
      const routes = new RouteTable(this, "PublicRoutes", { vpcId: vpc.id, route: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags });
      new RouteTableAssociation(this, "PublicRoutesAssociation", { subnetId: subnet.id, routeTableId: routes.id });
      vpcId = vpc.id;
      subnetId = subnet.id;
    }

    const sg = new SecurityGroup(this, "SecurityGroup", {
      namePrefix: `${name}-`,
      description: `NodeScale ${name}: HTTP(S) from anywhere, SSH only from listed CIDRs`,
      vpcId,
      tags,
      lifecycle: { createBeforeDestroy: true },
    });
    const ingress: { id: string; port: number; cidr: string; description: string }[] = [
      { id: "HttpV4", port: 80, cidr: "0.0.0.0/0", description: "HTTP from anywhere (IPv4)" },
      { id: "HttpV6", port: 80, cidr: "::/0", description: "HTTP from anywhere (IPv6)" },
      { id: "HttpsV4", port: 443, cidr: "0.0.0.0/0", description: "HTTPS from anywhere (IPv4)" },
      { id: "HttpsV6", port: 443, cidr: "::/0", description: "HTTPS from anywhere (IPv6)" },
      ...sshCidrs.map((cidr, i) => ({ id: `Ssh${i}`, port: 22, cidr, description: `SSH from ${cidr}` })),
    ];
    for (const rule of ingress) {
      new VpcSecurityGroupIngressRule(this, rule.id, {
        securityGroupId: sg.id,
        ipProtocol: "tcp",
        fromPort: rule.port,
        toPort: rule.port,
        ...(rule.cidr.includes(":") ? { cidrIpv6: rule.cidr } : { cidrIpv4: rule.cidr }),
        description: rule.description,
      });
    }
    new VpcSecurityGroupEgressRule(this, "EgressAll", {
      securityGroupId: sg.id,
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
      description: "Outbound: OS packages, Node.js download, S3 and SSM endpoints",
    });

    const releases = new ReleaseBucket(this, "Releases", { name, bundle: props.bundle });

    const assume = new DataAwsIamPolicyDocument(this, "AssumeEc2", {
      statement: [{ actions: ["sts:AssumeRole"], principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }] }],
    });
    const role = new IamRole(this, "Role", { namePrefix: `${name}-`, assumeRolePolicy: assume.json, tags });
    new IamRolePolicyAttachment(this, "Ssm", { role: role.name, policyArn: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" });
    const readReleases = new DataAwsIamPolicyDocument(this, "ReadReleases", {
      statement: [{ actions: ["s3:GetObject"], resources: [`${releases.bucket.arn}/releases/*`] }],
    });
    new IamRolePolicy(this, "ReadReleasesPolicy", { role: role.id, policy: readReleases.json });
    const profile = new IamInstanceProfile(this, "Profile", { namePrefix: `${name}-`, role: role.name, tags });

    const ami = new DataAwsAmi(this, "Ubuntu", {
      mostRecent: true,
      owners: [CANONICAL_OWNER_ID],
      filter: [
        { name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"] },
        { name: "virtualization-type", values: ["hvm"] },
      ],
    });

    this.instance = new Instance(this, "Instance", {
      ami: ami.id,
      instanceType,
      subnetId,
      vpcSecurityGroupIds: [sg.id],
      iamInstanceProfile: profile.name,
      monitoring: true,
      userDataBase64: gzipped.toString("base64"),
      // A new spec or template means a fresh machine; a new app release only changes the tags below.
      userDataReplaceOnChange: true,
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1, instanceMetadataTags: "enabled" },
      rootBlockDevice: { volumeType: "gp3", volumeSize: rootVolumeGiB, encrypted: true, deleteOnTermination: true },
      tags: { ...tags, [BUNDLE_URI_TAG]: releases.objectUri, [BUNDLE_SHA_TAG]: props.bundle.sha256 },
      // A newer Ubuntu AMI must not replace a running machine on every deploy.
      lifecycle: { ignoreChanges: ["ami"] },
      dependsOn: [releases.object],
    });

    // Runs the same provision script again whenever the release changes: fetch, verify, rolling reload.
    new SsmAssociation(this, "Rollout", {
      name: "AWS-RunShellScript",
      associationName: `${name}-rollout`,
      targets: [{ key: "InstanceIds", values: [this.instance.id] }],
      // The release travels in the command itself: instance tags can take a moment to reach IMDS.
      parameters: {
        commands: `NODESCALE_BUNDLE_URI=${releases.objectUri} NODESCALE_BUNDLE_SHA256=${props.bundle.sha256} ${VM_BASE}/bin/provision.sh`,
      },
      maxErrors: "0",
      maxConcurrency: "1",
    });

    this.eip = new Eip(this, "Eip", { domain: "vpc", instance: this.instance.id, tags });
  }
}
