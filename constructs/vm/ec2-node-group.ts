import type { AcmCertificate } from "@cdktf/provider-aws/lib/acm-certificate";
import { AutoscalingGroup } from "@cdktf/provider-aws/lib/autoscaling-group";
import { AutoscalingPolicy } from "@cdktf/provider-aws/lib/autoscaling-policy";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template";
import { Lb } from "@cdktf/provider-aws/lib/lb";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener";
import { LbListenerRule } from "@cdktf/provider-aws/lib/lb-listener-rule";
import { LbTargetGroup } from "@cdktf/provider-aws/lib/lb-target-group";
import { Route53Record } from "@cdktf/provider-aws/lib/route53-record";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { ALB_TLS_POLICY, domainCertificate } from "../acm-certificate";
import { Construct } from "../cdk";
import type { AppBundle } from "../release/bundle";
import { invalidProp } from "../service/errors";
import { HSTS_MAX_AGE_SECONDS } from "../service/rules";
import type { NodeServiceSpec } from "../service/spec";
import { BUCKET_TAG, BUNDLE_SHA_TAG, BUNDLE_URI_TAG, s3AgentInstall, s3BundleSource } from "./bundle-source";
import { EC2_MACHINE_DEFAULTS, EC2_NODE_GROUP_DEFAULTS, ec2UserDataBase64, MachineRole, PublicNetwork, ubuntuAmi } from "./ec2-common";
import { type ProcessPlan, processPlan, type VmMode } from "./plan";
import { type MachineSoftwareProps, machineSoftware, renderProvisionScript, VM_AGENT } from "./provision";
import { ReleaseBucket } from "./release-bucket";
import { ec2SecretsFetch, roleReadableOnly } from "./secrets-fetch";

/** Seconds a new machine gets to install Node.js, Nginx and PM2 and pass the target group's check. */
export const MACHINE_WARMUP_SECONDS = 300;

export interface Ec2NodeGroupProps extends MachineSoftwareProps {
  /** The service every machine runs. */
  readonly spec: NodeServiceSpec;
  /** The built app, shipped through a private S3 bucket; a new one rolls through the group. */
  readonly bundle: AppBundle;
  /**
   * PM2 cluster mode on one port, or fork mode with one process per port.
   * @default "cluster"
   */
  readonly mode?: VmMode;
  /**
   * Machines to start with (the group's desired capacity).
   * @default 2
   */
  readonly machines?: number;
  /**
   * Fewest machines the CPU autoscaling keeps.
   * @default machines
   */
  readonly minMachines?: number;
  /**
   * Most machines the CPU autoscaling may run.
   * @default machines
   */
  readonly maxMachines?: number;
  /**
   * Average CPU utilisation the target-tracking policy aims at (the VM twin of the HPA).
   * @default 60
   */
  readonly targetCpuPercent?: number;
  /**
   * Availability zones the machines spread over (at least two, so one zone's outage leaves machines).
   * @default 2
   */
  readonly zones?: number;
  /**
   * EC2 instance type.
   * @default "t3.small"
   */
  readonly instanceType?: string;
  /**
   * Root volume size.
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * CIDR of the VPC; subnets are carved from it per zone.
   * @default "10.30.0.0/16"
   */
  readonly vpcCidr?: string;
  /**
   * Refuse to delete the load balancer while this is on (turn on for production once the stack is stable).
   * @default false
   */
  readonly deletionProtection?: boolean;
  /**
   * Nginx enforces `spec.clientLimits` per client address (429 with `Retry-After` beyond them).
   * @default true
   */
  readonly clientLimits?: boolean;
  /**
   * With `spec.domain`: the Route 53 hosted zone of that domain, where the certificate's DNS validation record and
   * the domain's alias to the load balancer are created.
   * @default - no DNS records: create the validation record (output by the stack) and the alias yourself
   */
  readonly route53ZoneId?: string;
}

/**
 * Several Ubuntu LTS machines (Nginx in front of PM2, the same provision script and machine agent as one
 * machine) in an Auto Scaling group over two or more zones, behind an Application Load Balancer. Machines
 * take traffic only from the load balancer. A new release or spec is a new launch template version, rolled
 * by instance refresh: a new machine first, healthy on the target group's ready check, then an old one drains
 * (deregistration delay from the spec) and goes; a refresh that fails rolls back.
 */
export class Ec2NodeGroup extends Construct {
  /** Ports and process counts PM2 runs on each machine. */
  readonly plan: ProcessPlan;
  /** The boot script (cloud-init) of every machine, in the launch template. */
  readonly userData: string;
  /** The VPC and its public subnets (one per zone). */
  readonly network: PublicNetwork;
  /** The Application Load Balancer, the only way in. */
  readonly loadBalancer: Lb;
  /** The machines, health-checked on the ready path and drained before they stop. */
  readonly targetGroup: LbTargetGroup;
  /** What every machine boots from (IMDSv2 only, encrypted volume). */
  readonly launchTemplate: LaunchTemplate;
  /** The Auto Scaling group; releases and spec changes roll through it by instance refresh. */
  readonly group: AutoscalingGroup;
  /** CPU target tracking between the minimum and maximum machines. */
  readonly scaling: AutoscalingPolicy;
  /** With `spec.domain`: its ACM certificate (DNS-validated, renewed by ACM). */
  readonly certificate?: AcmCertificate;
  /** With `spec.domain`: the HTTPS listener (TLS 1.3 policy); requests for another host get 421. */
  readonly httpsListener?: LbListener;
  /** Security group of the load balancer: HTTP and HTTPS from anywhere. */
  readonly loadBalancerSecurityGroup: SecurityGroup;
  /** Security group of the machines: HTTP from the load balancer only, nothing else. */
  readonly machineSecurityGroup: SecurityGroup;
  /** The machines' role (SSM, read access to their releases); add policies here. */
  readonly role: MachineRole;
  /** The private bucket machines fetch releases from. */
  readonly releases: ReleaseBucket;

  constructor(scope: Construct, id: string, props: Ec2NodeGroupProps) {
    super(scope, id);
    const mode = props.mode ?? EC2_MACHINE_DEFAULTS.mode;
    const machines = props.machines ?? EC2_NODE_GROUP_DEFAULTS.machines;
    const minMachines = props.minMachines ?? machines;
    const maxMachines = props.maxMachines ?? machines;
    const targetCpuPercent = props.targetCpuPercent ?? EC2_NODE_GROUP_DEFAULTS.targetCpuPercent;
    const zones = props.zones ?? EC2_NODE_GROUP_DEFAULTS.zones;
    const instanceType = props.instanceType ?? EC2_MACHINE_DEFAULTS.instanceType;
    const rootVolumeGiB = props.rootVolumeGiB ?? EC2_MACHINE_DEFAULTS.rootVolumeGiB;
    const vpcCidr = props.vpcCidr ?? EC2_MACHINE_DEFAULTS.vpcCidr;
    const clientLimits = props.clientLimits ?? EC2_MACHINE_DEFAULTS.clientLimits;
    const deletionProtection = props.deletionProtection ?? EC2_NODE_GROUP_DEFAULTS.deletionProtection;
    if (!Number.isInteger(machines) || machines < 2) {
      invalidProp("Ec2NodeGroup", "machines", machines, "must be a whole number >= 2 (one machine is Ec2NodeHost)");
    }
    if (minMachines > machines || machines > maxMachines) {
      invalidProp(
        "Ec2NodeGroup",
        "machines",
        { minMachines, machines, maxMachines },
        "must satisfy minMachines <= machines <= maxMachines",
      );
    }
    if (!Number.isInteger(zones) || zones < 2 || zones > 6) {
      invalidProp("Ec2NodeGroup", "zones", zones, "must be a whole number 2-6");
    }
    const spec = props.spec;
    const name = spec.name;
    const tags = { Name: name, "nodescale:service": name };
    this.plan = processPlan(spec, mode);

    this.releases = new ReleaseBucket(this, "Releases", { name, bundle: props.bundle });
    this.userData = renderProvisionScript(spec, this.plan, {
      bundleSource: s3BundleSource(),
      agentInstall: s3AgentInstall(this.releases.agentKey, this.releases.agentSha256, VM_AGENT),
      behindLoadBalancer: true,
      // The ALB's nodes live in the VPC's public subnets (the machines' security group admits port 80 from it only).
      balancerCidrs: [vpcCidr],
      clientLimits,
      ...machineSoftware(props),
      ...(spec.domain !== undefined ? { forwardedHstsSeconds: HSTS_MAX_AGE_SECONDS, onlyHost: spec.domain } : {}),
      // Read at each machine's boot: a release (an instance refresh) brings machines that read the current values.
      secretsSetup: ec2SecretsFetch(spec.secrets),
    });
    const userDataBase64 = ec2UserDataBase64("Ec2NodeGroup", this.userData);

    this.network = new PublicNetwork(this, "Network", { name, cidr: vpcCidr, zones });
    const vpcId = this.network.vpc.id;
    const subnetIds = this.network.subnets.map((s) => s.id);

    this.loadBalancerSecurityGroup = new SecurityGroup(this, "LoadBalancerSecurityGroup", {
      namePrefix: `${name}-lb-`,
      description: `NodeScale ${name}: the load balancer, HTTP(S) from anywhere`,
      vpcId,
      tags,
      lifecycle: { createBeforeDestroy: true },
    });
    this.machineSecurityGroup = new SecurityGroup(this, "MachineSecurityGroup", {
      namePrefix: `${name}-machines-`,
      description: `NodeScale ${name}: the machines, HTTP from the load balancer only`,
      vpcId,
      tags,
      lifecycle: { createBeforeDestroy: true },
    });
    for (const [ruleId, port, cidr] of [
      ["HttpV4", 80, "0.0.0.0/0"],
      ["HttpV6", 80, "::/0"],
      ["HttpsV4", 443, "0.0.0.0/0"],
      ["HttpsV6", 443, "::/0"],
    ] as const) {
      new VpcSecurityGroupIngressRule(this, `LoadBalancer${ruleId}`, {
        securityGroupId: this.loadBalancerSecurityGroup.id,
        ipProtocol: "tcp",
        fromPort: port,
        toPort: port,
        ...(cidr.includes(":") ? { cidrIpv6: cidr } : { cidrIpv4: cidr }),
        description: `${port === 80 ? "HTTP" : "HTTPS"} from anywhere (${cidr.includes(":") ? "IPv6" : "IPv4"})`,
      });
    }
    new VpcSecurityGroupEgressRule(this, "LoadBalancerToMachines", {
      securityGroupId: this.loadBalancerSecurityGroup.id,
      ipProtocol: "tcp",
      fromPort: 80,
      toPort: 80,
      referencedSecurityGroupId: this.machineSecurityGroup.id,
      description: "To the machines' Nginx only",
    });
    new VpcSecurityGroupIngressRule(this, "MachinesFromLoadBalancer", {
      securityGroupId: this.machineSecurityGroup.id,
      ipProtocol: "tcp",
      fromPort: 80,
      toPort: 80,
      referencedSecurityGroupId: this.loadBalancerSecurityGroup.id,
      description: "HTTP from the load balancer only",
    });
    new VpcSecurityGroupEgressRule(this, "MachinesEgress", {
      securityGroupId: this.machineSecurityGroup.id,
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
      description: "Outbound: OS packages, Node.js download, S3 and SSM endpoints",
    });

    this.loadBalancer = new Lb(this, "LoadBalancer", {
      namePrefix: "ns-",
      loadBalancerType: "application",
      internal: false,
      securityGroups: [this.loadBalancerSecurityGroup.id],
      subnets: subnetIds,
      // Below Nginx's client keep-alive and Node's keepAliveTimeout: the balancer never reuses a closed socket.
      idleTimeout: spec.upstreamIdleTimeoutSeconds,
      dropInvalidHeaderFields: true,
      enableDeletionProtection: deletionProtection,
      tags,
    });
    this.targetGroup = new LbTargetGroup(this, "Machines", {
      namePrefix: "ns-",
      port: 80,
      protocol: "HTTP",
      protocolVersion: "HTTP1",
      vpcId,
      targetType: "instance",
      // Longer than PM2's kill timeout, itself longer than the app's grace: every accepted request finishes.
      deregistrationDelay: String(spec.deregistrationDelaySeconds),
      healthCheck: {
        enabled: true,
        path: spec.readyPath,
        protocol: "HTTP",
        matcher: "200",
        interval: 10,
        timeout: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      },
      tags,
      lifecycle: { createBeforeDestroy: true },
    });
    const domain = spec.domain;
    new LbListener(this, "Http", {
      loadBalancerArn: this.loadBalancer.arn,
      port: 80,
      protocol: "HTTP",
      // With a domain, plain HTTP only redirects.
      defaultAction: [
        domain === undefined
          ? { type: "forward", targetGroupArn: this.targetGroup.arn }
          : { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } },
      ],
      tags,
    });
    if (domain !== undefined) {
      const alias =
        props.route53ZoneId === undefined
          ? []
          : [
              new Route53Record(this, "Alias", {
                zoneId: props.route53ZoneId,
                name: domain,
                type: "A",
                alias: { name: this.loadBalancer.dnsName, zoneId: this.loadBalancer.zoneId, evaluateTargetHealth: true },
              }),
            ];
      const { certificate, issued } = domainCertificate(this, domain, props.route53ZoneId, tags, alias);
      this.certificate = certificate;
      this.httpsListener = new LbListener(this, "Https", {
        loadBalancerArn: this.loadBalancer.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: ALB_TLS_POLICY,
        certificateArn: issued.certificateArn,
        // A Host the service does not answer to is refused here; the machines' health checks do not come this way.
        defaultAction: [
          { type: "fixed-response", fixedResponse: { contentType: "text/plain", statusCode: "421", messageBody: "unknown host\n" } },
        ],
        tags,
      });
      new LbListenerRule(this, "HttpsForDomain", {
        listenerArn: this.httpsListener.arn,
        priority: 10,
        condition: [{ hostHeader: { values: [domain] } }],
        action: [{ type: "forward", targetGroupArn: this.targetGroup.arn }],
        tags,
      });
    }

    this.role = new MachineRole(this, "Machine", {
      name,
      releasesArn: `${this.releases.bucket.arn}/releases/*`,
      agentArn: `${this.releases.bucket.arn}/machine/*`,
      tags,
      secrets: spec.secrets,
    });
    const secretsRefusals = roleReadableOnly(this, "Ec2NodeGroup", spec.secrets);
    const ami = ubuntuAmi(this);
    const releaseTags = {
      ...tags,
      [BUNDLE_URI_TAG]: this.releases.objectUri,
      [BUNDLE_SHA_TAG]: props.bundle.sha256,
      [BUCKET_TAG]: this.releases.bucket.bucket,
    };

    this.launchTemplate = new LaunchTemplate(this, "LaunchTemplate", {
      namePrefix: `${name}-`,
      imageId: ami.id,
      instanceType,
      userData: userDataBase64,
      iamInstanceProfile: { arn: this.role.profile.arn },
      // A public address for outbound traffic only (packages, Node.js, S3, SSM) without a NAT gateway's cost:
      // the security group admits nothing from the internet, only the load balancer.
      networkInterfaces: [
        { associatePublicIpAddress: "true", deleteOnTermination: "true", securityGroups: [this.machineSecurityGroup.id] },
      ],
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1, instanceMetadataTags: "enabled" },
      monitoring: { enabled: true },
      blockDeviceMappings: [
        { deviceName: "/dev/sda1", ebs: { volumeType: "gp3", volumeSize: rootVolumeGiB, encrypted: "true", deleteOnTermination: "true" } },
      ],
      // The release travels in the instance tags (read through IMDS): a new release is a new version.
      tagSpecifications: [
        { resourceType: "instance", tags: releaseTags },
        { resourceType: "volume", tags },
      ],
      updateDefaultVersion: true,
      tags,
      ...(secretsRefusals.length > 0 ? { lifecycle: { precondition: secretsRefusals } } : {}),
      dependsOn: [this.releases.object],
    });

    this.group = new AutoscalingGroup(this, "Group", {
      namePrefix: `${name}-`,
      minSize: minMachines,
      maxSize: maxMachines,
      desiredCapacity: machines,
      vpcZoneIdentifier: subnetIds,
      targetGroupArns: [this.targetGroup.arn],
      // A machine that fails the load balancer's ready check is replaced, not only skipped.
      healthCheckType: "ELB",
      healthCheckGracePeriod: MACHINE_WARMUP_SECONDS,
      defaultInstanceWarmup: MACHINE_WARMUP_SECONDS,
      launchTemplate: { id: this.launchTemplate.id, version: this.launchTemplate.latestVersion.toString() },
      // Launch before terminate: never below the healthy size while a release or spec rolls.
      instanceRefresh: {
        strategy: "Rolling",
        preferences: {
          minHealthyPercentage: 100,
          maxHealthyPercentage: 200,
          instanceWarmup: String(MACHINE_WARMUP_SECONDS),
          skipMatching: true,
          autoRollback: true,
        },
      },
      waitForCapacityTimeout: `${MACHINE_WARMUP_SECONDS * 2}s`,
      enabledMetrics: ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances", "GroupTerminatingInstances"],
      tag: Object.entries(tags).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
      // Target tracking owns the count once running; a redeploy must not reset it.
      lifecycle: { ignoreChanges: ["desired_capacity"] },
    });

    this.scaling = new AutoscalingPolicy(this, "CpuTarget", {
      name: `${name}-cpu-target`,
      autoscalingGroupName: this.group.name,
      policyType: "TargetTrackingScaling",
      estimatedInstanceWarmup: MACHINE_WARMUP_SECONDS,
      targetTrackingConfiguration: {
        predefinedMetricSpecification: { predefinedMetricType: "ASGAverageCPUUtilization" },
        targetValue: targetCpuPercent,
      },
    });
  }
}
