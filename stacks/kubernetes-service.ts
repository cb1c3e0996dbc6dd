import { type Construct, type ITerraformDependable, TerraformOutput } from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import { INGRESS_CLASS, INGRESS_NAMESPACE } from "../constructs/k8s/cluster-addons";
import { NodeWorkload } from "../constructs/k8s/node-workload";
import type { LoadedConfig } from "./config";

export interface KubernetesServiceOptions {
  readonly loaded: LoadedConfig;
  /** Pinned image reference the pods run. */
  readonly image: string;
  /** The load balancer answers with a DNS name (AWS), an IP address (DigitalOcean), or either (your own cluster). */
  readonly loadBalancerAddress: "hostname" | "ip" | "either";
  /** The ingress controller the Ingress and the NetworkPolicy name (default: the one ClusterAddons installs). */
  readonly ingress?: { readonly className: string; readonly namespace: string };
  readonly clusterName: string;
  /** Prints how to get a kubeconfig for the cluster. */
  readonly kubeconfigCommand: string;
  /** Add-ons and the pushed image the workload waits for. */
  readonly dependsOn: ITerraformDependable[];
}

/** What every Kubernetes stack shares: the workload, the `url`/cluster outputs and the post-deploy health check. */
export function addKubernetesService(stack: Construct, options: KubernetesServiceOptions): NodeWorkload {
  const { config, spec } = options.loaded;
  const k = config.kubernetes;
  const workload = new NodeWorkload(stack, "Workload", {
    spec,
    image: options.image,
    minReplicas: k.minReplicas,
    maxReplicas: k.maxReplicas,
    targetCpuPercent: k.targetCpuPercent,
    preStopSeconds: k.preStopSeconds,
    host: k.host,
    tlsSecretName: k.tlsSecretName,
    ingressClassName: options.ingress?.className ?? INGRESS_CLASS,
    ingressControllerNamespace: options.ingress?.namespace ?? INGRESS_NAMESPACE,
    dependsOn: options.dependsOn,
  });
  const lb = `${workload.ingress.fqn}.status[0].load_balancer[0].ingress[0]`;
  const address = options.loadBalancerAddress === "either" ? `coalesce(${lb}.hostname, ${lb}.ip)` : `${lb}.${options.loadBalancerAddress}`;
  const url = `http://\${${address}}`;
  new TerraformOutput(stack, "url", { value: url, description: "Base URL of the service (the ingress controller's load balancer)" });
  new TerraformOutput(stack, "cluster_name", { value: options.clusterName });
  new TerraformOutput(stack, "kubeconfig_command", { value: options.kubeconfigCommand });
  new PostDeployHealthCheck(stack, "HealthCheck", {
    url,
    spec,
    // Proof the Service spreads load: at least minReplicas pods must answer through the Ingress.
    expectHostnames: k.minReplicas,
    expectRelease: options.image,
    timeoutSeconds: 600,
    dependsOn: [workload.deployment, workload.ingress],
  });
  return workload;
}

/** The fixed image tag of a release: its content hash, never `latest`. */
export function releaseTag(releaseId: string): string {
  return `r-${releaseId.slice(0, 12)}`;
}
