import { ContainerRegistryDockerCredentials } from "@cdktf/provider-digitalocean/lib/container-registry-docker-credentials";
import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { type Construct, Fn, type ITerraformDependable } from "../constructs/cdk";
import { AppImage } from "../constructs/k8s/app-image";
import { dropletShape } from "../constructs/k8s/capacity";
import { ACME_CLUSTER_ISSUER, CertManager } from "../constructs/k8s/cert-manager";
import { ClusterAddons } from "../constructs/k8s/cluster-addons";
import { DoksNodeCluster } from "../constructs/k8s/doks-cluster";
import type { NodeWorkload } from "../constructs/k8s/node-workload";
import { TRAEFIK_INGRESS_CLASS, TRAEFIK_NAMESPACE, TraefikIngress } from "../constructs/k8s/traefik";
import { HSTS_MAX_AGE_SECONDS } from "../constructs/service/rules";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { configureClusterProviders } from "./kubernetes-providers";
import { addKubernetesService, releaseTag, warnIfPodsDoNotFit } from "./kubernetes-service";
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
  /** cert-manager and its ACME ClusterIssuer, with a domain (and no kubernetes.tlsSecretName of your own). */
  readonly certManager?: CertManager;

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
    // The pool autoscales with the pods up to maxNodes: say so now if the HPA's maximum could not fit there.
    warnIfPodsDoNotFit(this, props.loaded, {
      shape: dropletShape(d.nodeSize),
      maxNodes: d.maxNodes,
      nodeName: d.nodeSize,
      maxNodesField: "kubernetes.doks.maxNodes",
    });
    const domain = spec.domain ?? k.host;
    this.ingressController = new TraefikIngress(this, "Ingress", {
      loadBalancerAnnotations: { "service.beta.kubernetes.io/do-loadbalancer-name": `${spec.name}-ingress` },
      upstreamIdleTimeoutSeconds: spec.upstreamIdleTimeoutSeconds,
      redirectHttpToHttps: domain !== undefined,
      dependsOn: [cluster],
    });
    // With a domain: a Let's Encrypt certificate through cert-manager, unless kubernetes.tlsSecretName names your own.
    const issueCertificate = domain !== undefined && k.tlsSecretName === undefined;
    if (issueCertificate) {
      this.certManager = new CertManager(this, "CertManager", {
        ingressClassName: TRAEFIK_INGRESS_CLASS,
        acmeServer: d.acmeServer,
        ...(d.acmeEmail !== undefined ? { acmeEmail: d.acmeEmail } : {}),
        dependsOn: [this.ingressController.release],
      });
    }

    let image = config.image;
    const waitFor: ITerraformDependable[] = [
      ...addons.installed,
      this.ingressController.release,
      ...(this.certManager ? [this.certManager.issuer] : []),
    ];
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
      ingressAnnotations: issueCertificate ? { "cert-manager.io/cluster-issuer": ACME_CLUSTER_ISSUER } : {},
      ...(domain !== undefined
        ? { httpsDomain: domain, tlsSecretName: k.tlsSecretName ?? `${spec.name}-tls`, hstsSeconds: HSTS_MAX_AGE_SECONDS }
        : {}),
      clusterName: cluster.name,
      kubeconfigCommand: `doctl kubernetes cluster kubeconfig save ${cluster.name}`,
      dependsOn: waitFor,
    });
  }
}
