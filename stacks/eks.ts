import { DataAwsEcrAuthorizationToken } from "@cdktf/provider-aws/lib/data-aws-ecr-authorization-token";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { Annotations, type Construct, Fn, type ITerraformDependable } from "../constructs/cdk";
import { AppImage } from "../constructs/k8s/app-image";
import { ClusterAddons } from "../constructs/k8s/cluster-addons";
import { EksNodeCluster } from "../constructs/k8s/eks-cluster";
import type { NodeWorkload } from "../constructs/k8s/node-workload";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { configureClusterProviders } from "./kubernetes-providers";
import { addKubernetesService, releaseTag } from "./kubernetes-service";
import { NodeScaleStack } from "./nodescale-stack";

export interface EksStackProps {
  readonly loaded: LoadedConfig;
  /** The app's folder: the image is built from its sources when the config names no `image`. */
  readonly appDir: string;
  /** Content hash of the app release, used as the image's fixed tag. */
  readonly releaseId: string;
}

/** `cdktf deploy eks`: VPC, EKS, add-ons, ingress-nginx, the app image and the workload, then a health check. */
export class EksStack extends NodeScaleStack {
  readonly cluster: EksNodeCluster;
  readonly workload: NodeWorkload;

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

    const addons = new ClusterAddons(this, "Addons", {
      loadBalancerAnnotations: {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
      },
      dependsOn: [this.cluster.nodeGroup, ...this.cluster.addons],
    });

    let image = config.image;
    const waitFor: ITerraformDependable[] = [...addons.installed];
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
      clusterName: cluster.name,
      kubeconfigCommand: `aws eks update-kubeconfig --name ${cluster.name} --region ${e.region}`,
      dependsOn: waitFor,
    });
  }
}
