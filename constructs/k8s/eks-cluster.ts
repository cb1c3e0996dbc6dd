import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DefaultSecurityGroup } from "@cdktf/provider-aws/lib/default-security-group";
import { EcrLifecyclePolicy } from "@cdktf/provider-aws/lib/ecr-lifecycle-policy";
import { EcrRepository } from "@cdktf/provider-aws/lib/ecr-repository";
import { Eip } from "@cdktf/provider-aws/lib/eip";
import { EksAddon } from "@cdktf/provider-aws/lib/eks-addon";
import { EksCluster } from "@cdktf/provider-aws/lib/eks-cluster";
import { EksNodeGroup } from "@cdktf/provider-aws/lib/eks-node-group";
import { FlowLog } from "@cdktf/provider-aws/lib/flow-log";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway";
import { Route } from "@cdktf/provider-aws/lib/route";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { Construct, Fn } from "../cdk";
import { refuseAtPlan } from "../refuse-at-plan";
import { whatTheListOpens } from "../service/cidr";
import { invalidProp } from "../service/errors";

/** The five EKS control-plane log types. */
export const EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"];
/** Add-ons every node needs; EKS picks each one's default version for the cluster version. */
export const EKS_CORE_ADDONS = ["vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"];

/** Zones the VPC may span: EKS needs two; the subnet plan (/20s of the VPC's /16) has room for six of each kind. */
export const EKS_ZONES = { min: 2, max: 6 } as const;

/** EksNodeCluster's defaults: the constructor, the props' JSDoc and the golden path's config schema all read these. */
export const EKS_CLUSTER_DEFAULTS = {
  // In EKS standard support as of 2026-11; bump deliberately, one minor at a time.
  version: "1.35",
  zones: 2,
  vpcCidr: "10.40.0.0/16",
  natGateways: "single",
  nodeInstanceType: "t3.medium",
  minNodes: 2,
  desiredNodes: 2,
  maxNodes: 5,
  logRetentionDays: 30,
  createRepository: true,
} as const;

export interface EksNodeClusterProps {
  /** Cluster name (also the prefix of its resources). */
  readonly name: string;
  /**
   * Kubernetes minor version, pinned.
   * @default "1.35"
   */
  readonly version?: string;
  /**
   * Availability zones the VPC spans (at least two).
   * @default 2
   */
  readonly zones?: number;
  /**
   * VPC CIDR; each zone gets a public and a private /20.
   * @default "10.40.0.0/16"
   */
  readonly vpcCidr?: string;
  /**
   * One NAT gateway for the VPC (cheaper) or one per zone (survives a zone outage).
   * @default "single"
   */
  readonly natGateways?: "single" | "perZone";
  /**
   * CIDRs allowed to reach the public API endpoint; empty turns the public endpoint off.
   * @default []
   */
  readonly publicAccessCidrs?: readonly string[];
  /**
   * Node instance type.
   * @default "t3.medium"
   */
  readonly nodeInstanceType?: string;
  /**
   * Fewest nodes.
   * @default 2
   */
  readonly minNodes?: number;
  /**
   * Nodes the group starts with.
   * @default 2
   */
  readonly desiredNodes?: number;
  /**
   * Most nodes.
   * @default 5
   */
  readonly maxNodes?: number;
  /**
   * Days to keep control-plane and flow logs.
   * @default 30
   */
  readonly logRetentionDays?: number;
  /**
   * Run in a VPC the platform team already has instead of creating one (then `zones`, `vpcCidr` and
   * `natGateways` do not apply, and flow logs are the VPC owner's). Nodes go to the private subnets, which need
   * a route out (NAT) for images; load balancers go to the public ones.
   * @default - a new VPC with public and private subnets in `zones` zones, NAT and flow logs
   */
  readonly existingVpc?: ExistingVpc;
  /**
   * Create an ECR repository for the app image. Turn off when the image is built elsewhere.
   * @default true
   */
  readonly createRepository?: boolean;
}

/** A VPC that exists already, by id. */
export interface ExistingVpc {
  readonly vpcId: string;
  /** At least two, in different zones: the nodes and the control plane's network interfaces go here. */
  readonly privateSubnetIds: readonly string[];
  /** At least two: where the ingress controller's load balancer goes. */
  readonly publicSubnetIds: readonly string[];
}

/**
 * An EKS cluster in its own VPC (or one you have): private nodes, KMS-encrypted secrets, all control-plane logs,
 * flow logs, the core add-ons, and an ECR repository for the app image when it is built here.
 */
export class EksNodeCluster extends Construct {
  /** The EKS cluster. */
  readonly cluster: EksCluster;
  /** The managed node group (private subnets, scaling bounds). */
  readonly nodeGroup: EksNodeGroup;
  /** The nodes' launch template: IMDSv2 with a hop limit of 1 (pods cannot reach the node's role), encrypted root. */
  readonly nodeLaunchTemplate: LaunchTemplate;
  /** The app image's repository; undefined with `createRepository: false`. */
  readonly repository?: EcrRepository;
  /** The core add-ons (vpc-cni, kube-proxy, coredns, ...), pinned by EKS to the cluster version. */
  readonly addons: EksAddon[];
  /** The VPC's id (created, or `existingVpc.vpcId`). */
  readonly vpcId: string;
  /** Subnet ids of the nodes. */
  readonly privateSubnetIds: string[];
  /** Subnet ids of internet-facing load balancers. */
  readonly publicSubnetIds: string[];
  /** The VPC it created; undefined with `existingVpc`. */
  readonly vpc?: Vpc;
  /** The subnets it created (empty with `existingVpc`). */
  readonly privateSubnets: Subnet[];
  readonly publicSubnets: Subnet[];
  /** NAT gateways it created (empty with `existingVpc`). */
  readonly natGateways: NatGateway[];
  /** The role the control plane assumes. */
  readonly clusterRole: IamRole;
  /** The nodes' role: attach policies here for what every node may do (prefer Pod Identity for what one app may do). */
  readonly nodeRole: IamRole;
  /** The KMS key that encrypts Kubernetes Secrets. */
  readonly secretsKey: KmsKey;

  constructor(scope: Construct, id: string, props: EksNodeClusterProps) {
    super(scope, id);
    const zones = props.zones ?? EKS_CLUSTER_DEFAULTS.zones;
    const vpcCidr = props.vpcCidr ?? EKS_CLUSTER_DEFAULTS.vpcCidr;
    const natMode = props.natGateways ?? EKS_CLUSTER_DEFAULTS.natGateways;
    const publicAccessCidrs = props.publicAccessCidrs ?? [];
    const nodeInstanceType = props.nodeInstanceType ?? EKS_CLUSTER_DEFAULTS.nodeInstanceType;
    const minNodes = props.minNodes ?? EKS_CLUSTER_DEFAULTS.minNodes;
    const desiredNodes = props.desiredNodes ?? EKS_CLUSTER_DEFAULTS.desiredNodes;
    const maxNodes = props.maxNodes ?? EKS_CLUSTER_DEFAULTS.maxNodes;
    const logRetentionDays = props.logRetentionDays ?? EKS_CLUSTER_DEFAULTS.logRetentionDays;
    const createRepository = props.createRepository ?? EKS_CLUSTER_DEFAULTS.createRepository;
    const version = props.version ?? EKS_CLUSTER_DEFAULTS.version;
    const fail = (field: string, value: unknown, allowed: string) => invalidProp("EksNodeCluster", field, value, allowed);
    if (!Number.isInteger(zones) || zones < EKS_ZONES.min || zones > EKS_ZONES.max) {
      fail("zones", zones, `must be a whole number ${EKS_ZONES.min}-${EKS_ZONES.max} (EKS needs two zones)`);
    }
    if (!/^1\.\d{2}$/.test(version)) fail("version", version, 'must be a Kubernetes minor version such as "1.35"');
    if (!(minNodes <= desiredNodes && desiredNodes <= maxNodes)) {
      fail("desiredNodes", desiredNodes, `must lie within minNodes (${minNodes}) and maxNodes (${maxNodes})`);
    }
    const opens = whatTheListOpens(publicAccessCidrs);
    if (opens !== undefined) fail("publicAccessCidrs", publicAccessCidrs, `covers ${opens}: list the addresses that deploy`);
    const existing = props.existingVpc;
    if (existing !== undefined) {
      if (existing.privateSubnetIds.length < 2)
        fail("existingVpc.privateSubnetIds", existing.privateSubnetIds, "needs at least two subnets");
      if (existing.publicSubnetIds.length < 2) fail("existingVpc.publicSubnetIds", existing.publicSubnetIds, "needs at least two subnets");
    }
    const name = props.name;
    const tags = { "nodescale:cluster": name };

    this.privateSubnets = [];
    this.publicSubnets = [];
    this.natGateways = [];
    if (existing === undefined) this.vpc = this.createNetwork(name, tags, zones, vpcCidr, natMode, logRetentionDays);
    this.vpcId = existing?.vpcId ?? (this.vpc as Vpc).id;
    this.privateSubnetIds = existing ? [...existing.privateSubnetIds] : this.privateSubnets.map((s) => s.id);
    this.publicSubnetIds = existing ? [...existing.publicSubnetIds] : this.publicSubnets.map((s) => s.id);

    this.secretsKey = new KmsKey(this, "SecretsKey", {
      description: `EKS secrets encryption for ${name}`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      tags,
    });
    const clusterAssume = new DataAwsIamPolicyDocument(this, "ClusterAssume", {
      statement: [{ actions: ["sts:AssumeRole", "sts:TagSession"], principals: [{ type: "Service", identifiers: ["eks.amazonaws.com"] }] }],
    });
    this.clusterRole = new IamRole(this, "ClusterRole", { namePrefix: `${name}-cluster-`, assumeRolePolicy: clusterAssume.json, tags });
    const clusterPolicy = new IamRolePolicyAttachment(this, "ClusterPolicy", {
      role: this.clusterRole.name,
      policyArn: "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
    });
    // Created first so its retention applies; EKS would otherwise create it with no expiry.
    const controlPlaneLogs = new CloudwatchLogGroup(this, "ControlPlaneLogs", {
      name: `/aws/eks/${name}/cluster`,
      retentionInDays: logRetentionDays,
    });

    this.cluster = new EksCluster(this, "Cluster", {
      name,
      version,
      roleArn: this.clusterRole.arn,
      vpcConfig: {
        subnetIds: [...this.privateSubnetIds, ...this.publicSubnetIds],
        endpointPrivateAccess: true,
        endpointPublicAccess: publicAccessCidrs.length > 0,
        publicAccessCidrs: publicAccessCidrs.length > 0 ? [...publicAccessCidrs] : undefined,
      },
      enabledClusterLogTypes: EKS_LOG_TYPES,
      encryptionConfig: { provider: { keyArn: this.secretsKey.arn }, resources: ["secrets"] },
      accessConfig: { authenticationMode: "API", bootstrapClusterCreatorAdminPermissions: true },
      upgradePolicy: { supportType: "STANDARD" },
      tags,
      dependsOn: [clusterPolicy, controlPlaneLogs],
    });

    const nodeAssume = new DataAwsIamPolicyDocument(this, "NodeAssume", {
      statement: [{ actions: ["sts:AssumeRole"], principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }] }],
    });
    this.nodeRole = new IamRole(this, "NodeRole", { namePrefix: `${name}-node-`, assumeRolePolicy: nodeAssume.json, tags });
    const nodePolicies = [
      "AmazonEKSWorkerNodePolicy",
      "AmazonEKS_CNI_Policy",
      "AmazonEC2ContainerRegistryReadOnly",
      "AmazonSSMManagedInstanceCore",
    ].map(
      (policy) =>
        new IamRolePolicyAttachment(this, `Node${policy}`, { role: this.nodeRole.name, policyArn: `arn:aws:iam::aws:policy/${policy}` }),
    );
    // IMDSv2 only, one hop: the node reaches its metadata, a pod (one hop further, in its own network namespace) does
    // not, so no pod can take the node role's credentials. Pods get AWS access through Pod Identity instead.
    this.nodeLaunchTemplate = new LaunchTemplate(this, "NodeLaunchTemplate", {
      namePrefix: `${name}-node-`,
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
      blockDeviceMappings: [
        { deviceName: "/dev/xvda", ebs: { volumeType: "gp3", volumeSize: 20, encrypted: "true", deleteOnTermination: "true" } },
      ],
      tagSpecifications: [{ resourceType: "instance", tags: { ...tags, Name: `${name}-node` } }],
      updateDefaultVersion: true,
      tags,
    });
    this.nodeGroup = new EksNodeGroup(this, "Nodes", {
      launchTemplate: { id: this.nodeLaunchTemplate.id, version: Fn.tostring(this.nodeLaunchTemplate.latestVersion) },
      clusterName: this.cluster.name,
      nodeGroupNamePrefix: `${name}-`,
      nodeRoleArn: this.nodeRole.arn,
      subnetIds: this.privateSubnetIds,
      instanceTypes: [nodeInstanceType],
      amiType: "AL2023_x86_64_STANDARD",
      capacityType: "ON_DEMAND",
      scalingConfig: { minSize: minNodes, desiredSize: desiredNodes, maxSize: maxNodes },
      updateConfig: { maxUnavailable: 1 },
      tags,
      // The cluster autoscaler (or a person) changes the size; an apply must not undo it.
      lifecycle: { ignoreChanges: ["scaling_config[0].desired_size"], createBeforeDestroy: true },
      dependsOn: nodePolicies,
    });

    this.addons = EKS_CORE_ADDONS.map(
      (addon) =>
        new EksAddon(this, `Addon${addon.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}`, {
          clusterName: this.cluster.name,
          addonName: addon,
          // The VPC CNI enforces NetworkPolicy only when asked to: without this the workload's policies are inert.
          ...(addon === "vpc-cni" ? { configurationValues: JSON.stringify({ enableNetworkPolicy: "true" }) } : {}),
          resolveConflictsOnCreate: "OVERWRITE",
          resolveConflictsOnUpdate: "OVERWRITE",
          dependsOn: addon === "coredns" ? [this.nodeGroup] : [],
        }),
    );

    if (createRepository) {
      this.repository = new EcrRepository(this, "Repository", {
        name,
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: [{ encryptionType: "KMS" }],
        forceDelete: false,
        tags,
      });
      new EcrLifecyclePolicy(this, "RepositoryLifecycle", {
        repository: this.repository.name,
        policy: JSON.stringify({
          rules: [
            {
              rulePriority: 1,
              description: "keep the last 30 images",
              selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 30 },
              action: { type: "expire" },
            },
          ],
        }),
      });
    }
  }

  /** A VPC over `zones` zones: a public and a private /20 in each, NAT, flow logs. */
  private createNetwork(
    name: string,
    tags: Record<string, string>,
    zones: number,
    vpcCidr: string,
    natMode: "single" | "perZone",
    logRetentionDays: number,
  ): Vpc {
    const az = new DataAwsAvailabilityZones(this, "Zones", { state: "available" });
    const vpc = new Vpc(this, "Vpc", {
      cidrBlock: vpcCidr,
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: { ...tags, Name: name },
    });
    // The VPC's default security group, which nothing here uses (EKS makes its own), allows all traffic between its
    // members and all egress until told otherwise: adopted with no rules, it allows nothing (Checkov CKV2_AWS_12).
    new DefaultSecurityGroup(this, "DefaultSecurityGroup", { vpcId: vpc.id, tags: { ...tags, Name: `${name}-default` } });
    const flowLogGroup = new CloudwatchLogGroup(this, "FlowLogGroup", {
      name: `/nodescale/${name}/vpc-flow-logs`,
      retentionInDays: logRetentionDays,
    });
    const flowAssume = new DataAwsIamPolicyDocument(this, "FlowLogAssume", {
      statement: [{ actions: ["sts:AssumeRole"], principals: [{ type: "Service", identifiers: ["vpc-flow-logs.amazonaws.com"] }] }],
    });
    const flowRole = new IamRole(this, "FlowLogRole", { namePrefix: `${name}-flow-`, assumeRolePolicy: flowAssume.json });
    const flowWrite = new DataAwsIamPolicyDocument(this, "FlowLogWrite", {
      statement: [
        {
          actions: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
          resources: [flowLogGroup.arn, `${flowLogGroup.arn}:*`],
        },
      ],
    });
    new IamRolePolicy(this, "FlowLogPolicy", { role: flowRole.id, policy: flowWrite.json });
    new FlowLog(this, "FlowLog", { vpcId: vpc.id, trafficType: "ALL", logDestination: flowLogGroup.arn, iamRoleArn: flowRole.arn, tags });

    const igw = new InternetGateway(this, "Igw", { vpcId: vpc.id, tags });
    const publicRoutes = new RouteTable(this, "PublicRoutes", { vpcId: vpc.id, tags });
    // Routes of their own, not inline `route` blocks (see ec2-common.ts: newer aws providers add required attributes).
    new Route(this, "PublicDefaultRoute", { routeTableId: publicRoutes.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id });
    // element() wraps around: without this check, asking for more zones than the region has would silently put
    // two subnets in one zone. Plan stops instead, naming the numbers.
    const enoughZones = refuseAtPlan(
      this,
      "ZonesWanted",
      `EksNodeCluster: zones is ${zones}, more than the region's available zones; ask for fewer`,
      zones,
      Fn.lengthOf(az.names),
    );
    for (let i = 0; i < zones; i++) {
      const zone = Fn.element(az.names, i);
      const pub = new Subnet(this, `Public${i}`, {
        ...(i === 0 ? { lifecycle: { precondition: [enoughZones] } } : {}),
        vpcId: vpc.id,
        cidrBlock: Fn.cidrsubnet(vpcCidr, 4, i),
        availabilityZone: zone,
        tags: { ...tags, Name: `${name}-public-${i}`, "kubernetes.io/role/elb": "1" },
      });
      new RouteTableAssociation(this, `Public${i}Routes`, { subnetId: pub.id, routeTableId: publicRoutes.id });
      this.publicSubnets.push(pub);
      if (natMode === "perZone" || i === 0) {
        const eip = new Eip(this, `Nat${i}Ip`, { domain: "vpc", tags });
        this.natGateways.push(
          new NatGateway(this, `Nat${i}`, { allocationId: eip.id, subnetId: pub.id, tags: { ...tags, Name: `${name}-nat-${i}` } }),
        );
      }
      const priv = new Subnet(this, `Private${i}`, {
        vpcId: vpc.id,
        cidrBlock: Fn.cidrsubnet(vpcCidr, 4, 8 + i),
        availabilityZone: zone,
        tags: { ...tags, Name: `${name}-private-${i}`, "kubernetes.io/role/internal-elb": "1" },
      });
      const nat = this.natGateways[natMode === "perZone" ? i : 0];
      const routes = new RouteTable(this, `Private${i}RouteTable`, { vpcId: vpc.id, tags });
      new Route(this, `Private${i}DefaultRoute`, { routeTableId: routes.id, destinationCidrBlock: "0.0.0.0/0", natGatewayId: nat.id });
      new RouteTableAssociation(this, `Private${i}Routes`, { subnetId: priv.id, routeTableId: routes.id });
      this.privateSubnets.push(priv);
    }
    return vpc;
  }
}
