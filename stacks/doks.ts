import { ContainerRegistryDockerCredentials } from "@cdktf/provider-digitalocean/lib/container-registry-docker-credentials";
import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { type Construct, Fn, type ITerraformDependable } from "../constructs/cdk";
import { AppImage } from "../constructs/k8s/app-image";
import { ClusterAddons } from "../constructs/k8s/cluster-addons";
import { DoksNodeCluster } from "../constructs/k8s/doks-cluster";
import type { NodeWorkload } from "../constructs/k8s/node-workload";
import { TRAEFIK_INGRESS_CLASS, TRAEFIK_NAMESPACE, TraefikIngress } from "../constructs/k8s/traefik";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { configureClusterProviders } from "./kubernetes-providers";
import { addKubernetesService, releaseTag } from "./kubernetes-service";
import { NodeScaleStack } from "./nodescale-stack";

export interface DoksStackProps {
  readonly loaded: LoadedConfig;
  /** The app's folder: the image is built from its sources when the config names no `image`. */
  readonly appDir: string;
  /** Content hash of the app release, used as the image's fixed tag. */
  readonly releaseId: string;
}

/** `cdktf deploy doks`: VPC, DOKS, DOCR, Traefik, the app image and the workload, then a health check. */
export class DoksStack extends NodeScaleStack {
  readonly cluster: DoksNodeCluster;
  readonly workload: NodeWorkload;
  /** The ingress controller (Traefik) the workload's Ingress goes through. */
  readonly ingressController: TraefikIngress;

  constructor(scope: Construct, id: string, props: DoksStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const k = config.kubernetes;
    const d = k.doks;
    configureBackend(this, config.state, id);
    new DigitaloceanProvider(this, "DigitalOcean", {});

    this.cluster = new DoksNodeCluster(this, "Cluster", {
      name: spec.name,
      region: d.region,
      versionPrefix: d.versionPrefix,
      nodeSize: d.nodeSize,
      minNodes: d.minNodes,
      maxNodes: d.maxNodes,
      haControlPlane: d.haControlPlane,
      vpcCidr: d.vpcCidr,
      maintenanceDay: d.maintenanceDay,
      maintenanceStartTime: d.maintenanceStartTime,
      createRegistry: config.image === undefined,
    });
    const cluster = this.cluster.cluster;
    const kubeConfig = cluster.kubeConfig.get(0);
    configureClusterProviders(this, {
      host: cluster.endpoint,
      clusterCaCertificate: Fn.base64decode(kubeConfig.clusterCaCertificate),
      token: kubeConfig.token,
    });

    // metrics-server for the HPA; the edge is Traefik (ingress-nginx is retired upstream).
    const addons = new ClusterAddons(this, "Addons", { dependsOn: [cluster] });
    this.ingressController = new TraefikIngress(this, "Ingress", {
      loadBalancerAnnotations: { "service.beta.kubernetes.io/do-loadbalancer-name": `${spec.name}-ingress` },
      upstreamIdleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
      dependsOn: [cluster],
    });

    let image = config.image;
    const waitFor: ITerraformDependable[] = [...addons.installed, this.ingressController.release];
    const registry = this.cluster.registry;
    if (image === undefined && registry) {
      const credentials = new ContainerRegistryDockerCredentials(this, "RegistryCredentials", {
        registryName: registry.name,
        write: true,
        expirySeconds: 3600,
      });
      new DockerProvider(this, "Docker", {
        registryAuth: [{ address: "registry.digitalocean.com", configFileContent: credentials.dockerCredentials }],
      });
      const built = new AppImage(this, "Image", {
        repository: `registry.digitalocean.com/${registry.name}/${spec.name}`,
        tag: releaseTag(props.releaseId),
        spec: props.loaded.spec,
        appDir: props.appDir,
      });
      image = built.digestRef;
      waitFor.push(built.pushed);
    }
    if (image === undefined) throw new Error("DoksStack: no image: set `image` or let the stack create a registry");

    this.workload = addKubernetesService(this, {
      awsSecrets: false,
      loaded: props.loaded,
      image,
      loadBalancerAddress: "ip",
      ingress: { className: TRAEFIK_INGRESS_CLASS, namespace: TRAEFIK_NAMESPACE },
      ingressAnnotations: {},
      clusterName: cluster.name,
      kubeconfigCommand: `doctl kubernetes cluster kubeconfig save ${cluster.name}`,
      dependsOn: waitFor,
    });
  }
}
