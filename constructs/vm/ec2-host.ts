import { Eip } from "@cdktf/provider-aws/lib/eip";
import { EipAssociation } from "@cdktf/provider-aws/lib/eip-association";
import { Instance } from "@cdktf/provider-aws/lib/instance";
import { Route53Record } from "@cdktf/provider-aws/lib/route53-record";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { SsmAssociation } from "@cdktf/provider-aws/lib/ssm-association";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { Construct, Fn } from "../cdk";
import type { PostDeployHealthCheck } from "../health/post-deploy-health-check";
import type { AppBundle } from "../release/bundle";
import { invalidProp } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import { assertAcmeServer, LETS_ENCRYPT_DIRECTORY } from "./acme";
import { BUCKET_TAG, BUNDLE_SHA_TAG, BUNDLE_URI_TAG, s3AgentInstall, s3BundleSource, s3CertificateState } from "./bundle-source";
import { EC2_MACHINE_DEFAULTS, ec2UserDataBase64, MachineRole, PublicNetwork, ubuntuAmi } from "./ec2-common";
import { newMachineReady } from "./new-machine-check";
import { type ProcessPlan, processPlan, type VmMode } from "./plan";
import { type MachineSoftwareProps, machineSoftware, renderProvisionScript, VM_AGENT, VM_BASE } from "./provision";
import { ReleaseBucket } from "./release-bucket";
import { ec2SecretsFetch, roleReadableOnly } from "./secrets-fetch";
import { assertSshNotWorldOpen } from "./ssh";

export { CANONICAL_OWNER_ID, EC2_USER_DATA_LIMIT_BYTES } from "./ec2-common";

/** Where one machine keeps the certificate it serves (chain and key only) for the machine replacing it. */
const TLS_STATE_KEY = "tls/certificate.pem";

export interface Ec2NodeHostProps extends MachineSoftwareProps {
  /** The service the machine runs. */
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
  /**
   * Nginx enforces `spec.clientLimits` per client address (429 with `Retry-After` beyond them).
   * @default true
   */
  readonly clientLimits?: boolean;
  /**
   * With `spec.domain`: the ACME directory the machine gets its certificate from (Let's Encrypt's staging directory
   * to try things out, or a team's own ACME CA).
   * @default "https://acme-v02.api.letsencrypt.org/directory"
   */
  readonly acmeServer?: string;
  /**
   * With `spec.domain`: e-mail for the ACME account.
   * @default - an account without e-mail
   */
  readonly acmeEmail?: string;
  /**
   * With `spec.domain`: the Route 53 hosted zone of the domain, where an A record to the Elastic IP is created.
   * @default - none: point the domain at the `public_ip` output yourself
   */
  readonly route53ZoneId?: string;
}

/**
 * One Ubuntu LTS EC2 instance running Nginx in front of PM2: hardened defaults (IMDSv2, encrypted gp3,
 * SSM instead of SSH), an Elastic IP, and app releases from S3 rolled out in place through SSM. A changed
 * spec brings up a new instance, proves it healthy on its own address, then moves the Elastic IP to it;
 * only then does the old one go.
 */
export class Ec2NodeHost extends Construct {
  /** The EC2 instance (IMDSv2 only, encrypted root volume). */
  readonly instance: Instance;
  /** The public address; it moves to a replacement machine only once that one is healthy. */
  readonly eip: Eip;
  /** Moves the Elastic IP to the instance once it answered healthy on its own address. */
  readonly eipAssociation: EipAssociation;
  /** Ports and process counts PM2 runs, derived from the spec and mode. */
  readonly plan: ProcessPlan;
  /** The boot script (cloud-init) the instance runs: provisioning only, no secrets. */
  readonly userData: string;
  /** The instance's security group (HTTP/HTTPS from anywhere, SSH only from `sshCidrs`). */
  readonly securityGroup: SecurityGroup;
  /** The instance role (SSM, read access to its releases); add policies here. */
  readonly role: MachineRole;
  /** With `spec.domain` and `route53ZoneId`: the domain's A record to the Elastic IP. */
  readonly dnsRecord?: Route53Record;
  /** The check that a new instance answers, on its own address, before the Elastic IP moves to it. */
  readonly readyBeforeAddressMoves: PostDeployHealthCheck;

  constructor(scope: Construct, id: string, props: Ec2NodeHostProps) {
    super(scope, id);
    const mode = props.mode ?? EC2_MACHINE_DEFAULTS.mode;
    const instanceType = props.instanceType ?? EC2_MACHINE_DEFAULTS.instanceType;
    const sshCidrs = props.sshCidrs ?? [];
    const rootVolumeGiB = props.rootVolumeGiB ?? EC2_MACHINE_DEFAULTS.rootVolumeGiB;
    const vpcCidr = props.vpcCidr ?? EC2_MACHINE_DEFAULTS.vpcCidr;
    const clientLimits = props.clientLimits ?? EC2_MACHINE_DEFAULTS.clientLimits;
    const acmeServer = props.acmeServer ?? LETS_ENCRYPT_DIRECTORY;
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

    if (spec.domain === undefined && props.route53ZoneId !== undefined) {
      invalidProp("Ec2NodeHost", "route53ZoneId", props.route53ZoneId, "needs spec.domain (the name the record is for)");
    }
    assertAcmeServer("Ec2NodeHost", acmeServer);
    // Its name is a token, which gzipped user data cannot carry: the machine reads it from an instance tag.
    const releases = new ReleaseBucket(this, "Releases", { name, bundle: props.bundle });
    const script = renderProvisionScript(spec, this.plan, {
      bundleSource: s3BundleSource(),
      agentInstall: s3AgentInstall(releases.agentKey, releases.agentSha256, VM_AGENT),
      clientLimits,
      ...machineSoftware(props),
      secretsSetup: ec2SecretsFetch(spec.secrets),
      ...(spec.domain !== undefined
        ? {
            machineTls: {
              domain: spec.domain,
              acmeServer,
              ...(props.acmeEmail !== undefined ? { email: props.acmeEmail } : {}),
              // The machine this one replaces kept its certificate there: the same one from the first answer.
              ...s3CertificateState(TLS_STATE_KEY, { domain: spec.domain }),
            },
          }
        : {}),
    });
    const userDataBase64 = ec2UserDataBase64("Ec2NodeHost", script);
    this.userData = script;

    let vpcId = props.vpcId;
    let subnetId = props.subnetId;
    if (vpcId === undefined) {
      const network = new PublicNetwork(this, "Network", { name, cidr: vpcCidr, zones: 1 });
      vpcId = network.vpc.id;
      subnetId = network.subnets[0].id;
    }

    const sg = new SecurityGroup(this, "SecurityGroup", {
      namePrefix: `${name}-`,
      description: `NodeScale ${name}: HTTP(S) from anywhere, SSH only from listed CIDRs`,
      vpcId,
      tags,
      lifecycle: { createBeforeDestroy: true },
    });
    this.securityGroup = sg;
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

    this.role = new MachineRole(this, "Machine", {
      name,
      releasesArn: `${releases.bucket.arn}/releases/*`,
      agentArn: `${releases.bucket.arn}/machine/*`,
      tags,
      secrets: spec.secrets,
      ...(spec.domain !== undefined ? { tlsStateArn: `${releases.bucket.arn}/${TLS_STATE_KEY}` } : {}),
    });
    const refusals = roleReadableOnly(this, "Ec2NodeHost", spec.secrets);
    const rereadSecrets = Object.keys(spec.secrets).length > 0;
    const ami = ubuntuAmi(this);

    this.instance = new Instance(this, "Instance", {
      ami: ami.id,
      instanceType,
      subnetId,
      vpcSecurityGroupIds: [sg.id],
      iamInstanceProfile: this.role.profile.name,
      // A public address of its own, so a replacement can be proven healthy before the Elastic IP moves.
      associatePublicIpAddress: true,
      monitoring: true,
      userDataBase64,
      // A new spec or template means a fresh machine; a new app release only changes the tags below.
      userDataReplaceOnChange: true,
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1, instanceMetadataTags: "enabled" },
      rootBlockDevice: { volumeType: "gp3", volumeSize: rootVolumeGiB, encrypted: true, deleteOnTermination: true },
      tags: { ...tags, [BUNDLE_URI_TAG]: releases.objectUri, [BUNDLE_SHA_TAG]: props.bundle.sha256, [BUCKET_TAG]: releases.bucket.bucket },
      // A newer Ubuntu AMI must not replace a running machine on every deploy; a replacement (new spec)
      // comes up before the old instance goes.
      lifecycle: { ignoreChanges: ["ami"], createBeforeDestroy: true, ...(refusals.length > 0 ? { precondition: refusals } : {}) },
      dependsOn: [releases.object],
    });

    // Runs the same provision script again whenever the release changes: fetch, verify, rolling reload.
    new SsmAssociation(this, "Rollout", {
      name: "AWS-RunShellScript",
      associationName: `${name}-rollout`,
      targets: [{ key: "InstanceIds", values: [this.instance.id] }],
      // The release travels in the command itself: instance tags can take a moment to reach IMDS.
      parameters: {
        commands: `NODESCALE_BUNDLE_URI=${releases.objectUri} NODESCALE_BUNDLE_SHA256=${props.bundle.sha256} ${VM_BASE}/bin/provision.sh${
          // With secrets, every deploy re-runs the converge, which re-reads them: a changed value reloads the processes.
          rereadSecrets ? ` # deploy ${Fn.timestamp()}` : ""
        }`,
      },
      maxErrors: "0",
      maxConcurrency: "1",
    });

    this.readyBeforeAddressMoves = newMachineReady(this, "ReadyBeforeAddressMoves", {
      spec,
      plan: this.plan,
      release: props.bundle.sha256,
      url: `http://${this.instance.publicIp}`,
      machineId: this.instance.id,
    });
    this.eip = new Eip(this, "Eip", { domain: "vpc", tags });
    this.eipAssociation = new EipAssociation(this, "EipAssociation", {
      instanceId: this.instance.id,
      allocationId: this.eip.allocationId,
      dependsOn: [this.readyBeforeAddressMoves.resource],
    });
    if (spec.domain !== undefined && props.route53ZoneId !== undefined) {
      // The domain reaches the machine only once the Elastic IP is on a proven one; it gets its certificate then.
      this.dnsRecord = new Route53Record(this, "DomainRecord", {
        zoneId: props.route53ZoneId,
        name: spec.domain,
        type: "A",
        ttl: 60,
        records: [this.eip.publicIp],
      });
    }
  }
}
