import { DataAwsEcrAuthorizationToken } from "@cdktf/provider-aws/lib/data-aws-ecr-authorization-token";
import { DataAwsSubnet } from "@cdktf/provider-aws/lib/data-aws-subnet";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { domainCertificate } from "../constructs/acm-certificate";
import { Annotations, type Construct, Fn, type ITerraformDependable, TerraformOutput } from "../constructs/cdk";
import { AppImage } from "../constructs/k8s/app-image";
import {
  ALB_CONTROLLER_NAMESPACE,
  ALB_INGRESS_CLASS,
  AwsLoadBalancerController,
  albIngressAnnotations,
} from "../constructs/k8s/aws-load-balancer-controller";
import { ec2Shape } from "../constructs/k8s/capacity";
import { ClusterAddons } from "../constructs/k8s/cluster-addons";
import { CLUSTER_AUTOSCALER_APP_VERSION, ClusterAutoscaler } from "../constructs/k8s/cluster-autoscaler";
import { EksNodeCluster } from "../constructs/k8s/eks-cluster";
import type { NodeWorkload } from "../constructs/k8s/node-workload";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { configureClusterProviders } from "./kubernetes-providers";
import { addKubernetesService, releaseTag, warnIfPodsDoNotFit } from "./kubernetes-service";
import { NodeScaleStack } from "./nodescale-stack";

export interface EksStackProps {
  readonly loaded: LoadedConfig;
  /** The app's folder: the image is built from its sources when the config names no `image`. */
  readonly appDir: string;
  /** Content hash of the app release, used as the image's fixed tag. */
  readonly releaseId: string;
}

/** `cdktf deploy eks`: VPC, EKS, add-ons, the AWS Load Balancer Controller, the app image and the workload, then a health check. */
export class EksStack extends NodeScaleStack {
  readonly cluster: EksNodeCluster;
  readonly workload: NodeWorkload;
  /** The Cluster Autoscaler, which grows and shrinks the node group with the pods. */
  readonly autoscaler: ClusterAutoscaler;
  /** The AWS Load Balancer Controller, which turns the workload's Ingress into an ALB. */
  readonly loadBalancerController: AwsLoadBalancerController;

  constructor(scope: Construct, id: string, props: EksStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const k = config.kubernetes;
    const e = k.eks;
    configureBackend(this, config.state, id);
    new AwsProvider(this, "Aws", { region: e.region, defaultTags: [{ tags: { "managed-by": "nodescale", "nodescale:stack": id } }] });

    this.cluster = new EksNodeCluster(this, "Cluster", {
      name: spec.name,
      version: e.version,
      zones: e.zones,
      vpcCidr: e.vpcCidr,
      natGateways: e.natGateways,
      publicAccessCidrs: e.publicAccessCidrs,
      nodeInstanceType: e.nodeInstanceType,
      minNodes: e.minNodes,
      desiredNodes: e.desiredNodes,
      maxNodes: e.maxNodes,
      ...(e.vpcId && e.privateSubnetIds && e.publicSubnetIds
        ? { existingVpc: { vpcId: e.vpcId, privateSubnetIds: e.privateSubnetIds, publicSubnetIds: e.publicSubnetIds } }
        : {}),
      createRepository: config.image === undefined,
    });
    if (e.publicAccessCidrs.length === 0) {
      Annotations.of(this).addWarning(
        "kubernetes.eks.publicAccessCidrs is empty, so the EKS API endpoint is private: run `cdktf deploy eks` from inside the VPC, or list your deploying machine's CIDR.",
      );
    }
    const cluster = this.cluster.cluster;
    configureClusterProviders(this, {
      host: cluster.endpoint,
      clusterCaCertificate: Fn.base64decode(cluster.certificateAuthority.get(0).data),
      exec: { command: "aws", args: ["eks", "get-token", "--cluster-name", cluster.name, "--region", e.region] },
    });

    // metrics-server for the HPA; the edge is the AWS Load Balancer Controller (ingress-nginx is retired upstream).
    const addons = new ClusterAddons(this, "Addons", { dependsOn: [this.cluster.nodeGroup, ...this.cluster.addons] });
    this.loadBalancerController = new AwsLoadBalancerController(this, "LoadBalancerController", {
      clusterName: cluster.name,
      region: e.region,
      vpcId: this.cluster.vpcId,
      name: spec.name,
      dependsOn: [this.cluster.nodeGroup, ...this.cluster.addons],
    });
    warnIfPodsDoNotFit(this, props.loaded, {
      shape: ec2Shape(e.nodeInstanceType),
      maxNodes: e.maxNodes,
      nodeName: e.nodeInstanceType,
      maxNodesField: "kubernetes.eks.maxNodes",
    });
    if (!CLUSTER_AUTOSCALER_APP_VERSION.startsWith(`${e.version}.`)) {
      Annotations.of(this).addWarning(
        `kubernetes.eks.version ${e.version}: the Cluster Autoscaler NodeScale pins is ${CLUSTER_AUTOSCALER_APP_VERSION}, made for Kubernetes ${CLUSTER_AUTOSCALER_APP_VERSION.split(".").slice(0, 2).join(".")}; its minor should match the cluster's.`,
      );
    }
    // Nodes follow the pods: the HPA adds pods, the autoscaler adds nodes for those that do not fit (up to maxNodes).
    this.autoscaler = new ClusterAutoscaler(this, "NodeAutoscaler", {
      clusterName: cluster.name,
      region: e.region,
      name: spec.name,
      dependsOn: [this.cluster.nodeGroup, ...this.cluster.addons],
    });
    // The ALB sends straight to pod IPs from the public subnets: those ranges are what the NetworkPolicy admits.
    const publicSubnetCidrs = this.cluster.publicSubnetIds.map(
      (subnetId, i) => new DataAwsSubnet(this, `PublicSubnet${i}`, { id: subnetId }).cidrBlock,
    );
    const domain = spec.domain ?? k.host;
    const tls = domain === undefined ? undefined : domainCertificate(this, domain, e.route53ZoneId, { "nodescale:service": spec.name });
    if (tls !== undefined && e.route53ZoneId === undefined) {
      new TerraformOutput(this, "certificate_validation", {
        value: tls.certificate.domainValidationOptions,
        description:
          "Create these DNS records (and a CNAME of the domain to the url's load balancer): the deploy waits until ACM validates",
      });
    }

    let image = config.image;
    const waitFor: ITerraformDependable[] = [...addons.installed, this.loadBalancerController.release, ...(tls ? [tls.issued] : [])];
    const repository = this.cluster.repository;
    // createRepository follows config.image, so without an image there is a repository to build into.
    if (image === undefined) {
      if (repository === undefined) throw new Error("EksStack: no image and no repository to build one into");
      const auth = new DataAwsEcrAuthorizationToken(this, "EcrAuth", { registryId: repository.registryId });
      new DockerProvider(this, "Docker", {
        registryAuth: [{ address: Fn.replace(auth.proxyEndpoint, "https://", ""), username: auth.userName, password: auth.password }],
      });
      const built = new AppImage(this, "Image", {
        repository: repository.repositoryUrl,
        tag: releaseTag(props.releaseId),
        spec: props.loaded.spec,
        appDir: props.appDir,
      });
      image = built.digestRef;
      waitFor.push(built.pushed);
    }

    this.workload = addKubernetesService(this, {
      awsSecrets: true,
      loaded: props.loaded,
      image,
      loadBalancerAddress: "hostname",
      ingress: { className: ALB_INGRESS_CLASS, namespace: ALB_CONTROLLER_NAMESPACE },
      ingressAnnotations: albIngressAnnotations(spec, k.preStopSeconds, tls?.issued.certificateArn),
      ingressSourceCidrs: publicSubnetCidrs,
      // The controller holds a new pod out of rotation until the ALB has it healthy (rolling updates lose nothing).
      namespaceLabels: { "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled" },
      ...(domain !== undefined ? { httpsDomain: domain } : {}),
      clusterName: cluster.name,
      kubeconfigCommand: `aws eks update-kubeconfig --name ${cluster.name} --region ${e.region}`,
      dependsOn: waitFor,
    });
  }
}
