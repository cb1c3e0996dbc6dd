import { DataAwsSecretsmanagerSecretVersion } from "@cdktf/provider-aws/lib/data-aws-secretsmanager-secret-version";
import { DataAwsSsmParameter } from "@cdktf/provider-aws/lib/data-aws-ssm-parameter";
import {
  Annotations,
  type Construct,
  DataResource,
  type ITerraformDependable,
  TerraformOutput,
  TerraformVariable,
} from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import { type NodeShape, podsDoNotFit } from "../constructs/k8s/capacity";
import { INGRESS_CLASS, INGRESS_NAMESPACE } from "../constructs/k8s/cluster-addons";
import { NodeWorkload } from "../constructs/k8s/node-workload";
import { ServiceMonitor } from "../constructs/k8s/service-monitor";
import { refuseAtPlan } from "../constructs/refuse-at-plan";
import { describeSecretRef } from "../constructs/service/secrets";
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
  /** The stack has an AWS provider: ssm: and secretsmanager: references are read at plan (EKS). */
  readonly awsSecrets: boolean;
  /** The Ingress's annotations (default: ingress-nginx's). */
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
  /** Where the load balancer's traffic comes from when it sends to pod IPs (default: the controller's namespace). */
  readonly ingressSourceCidrs?: readonly string[];
  /** Extra labels on the workload's namespace. */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** The load balancer serves HTTPS for this domain (and only redirects HTTP): the url and the check use it. */
  readonly httpsDomain?: string;
  /** The Secret the Ingress's certificate is in (default: kubernetes.tlsSecretName). */
  readonly tlsSecretName?: string;
  /** HSTS max-age the pods send on what came over HTTPS (for a controller that sends none). */
  readonly hstsSeconds?: number;
}

/**
 * The service's secrets as Terraform expressions, none holding a value: env:NAME is the sensitive variable NAME
 * (Terraform reads it from TF_VAR_NAME), ssm: and secretsmanager: are data sources read with the deploy's AWS
 * credentials. What a stack cannot read stops its plan, naming the references.
 */
function secretValues(stack: Construct, options: KubernetesServiceOptions): Record<string, string> {
  const values: Record<string, string> = {};
  const variables = new Map<string, TerraformVariable>();
  const unreadable: string[] = [];
  for (const [name, ref] of Object.entries(options.loaded.spec.secrets)) {
    if (ref.kind === "env") {
      const variable =
        variables.get(ref.variable) ??
        new TerraformVariable(stack, ref.variable, {
          type: "string",
          sensitive: true,
          nullable: false,
          description: `service.secrets.${name} (env:${ref.variable}): set TF_VAR_${ref.variable} in the shell that deploys`,
        });
      variables.set(ref.variable, variable);
      values[name] = variable.stringValue;
    } else if (options.awsSecrets && ref.kind === "ssm") {
      values[name] = new DataAwsSsmParameter(stack, `Secret_${name}`, { name: ref.name, withDecryption: true }).value;
    } else if (options.awsSecrets && ref.kind === "secretsmanager") {
      values[name] = new DataAwsSecretsmanagerSecretVersion(stack, `Secret_${name}`, { secretId: ref.arn }).secretString;
    } else {
      unreadable.push(`service.secrets.${name} is ${describeSecretRef(ref)}`);
    }
  }
  if (unreadable.length > 0) {
    const refusal = refuseAtPlan(
      stack,
      "SecretsUnreadable",
      `this stack has no AWS credentials to read ${unreadable.join(", ")}: on doks and k8s give secrets as env:NAME (a sensitive Terraform variable, TF_VAR_NAME), or deploy with eks`,
    );
    new DataResource(stack, "SecretsRefused", { lifecycle: { precondition: [refusal] } });
  }
  return values;
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
    host: options.httpsDomain ?? k.host,
    tlsSecretName: options.tlsSecretName ?? k.tlsSecretName,
    ...(options.hstsSeconds !== undefined ? { hstsSeconds: options.hstsSeconds } : {}),
    ingressClassName: options.ingress?.className ?? INGRESS_CLASS,
    ingressControllerNamespace: options.ingress?.namespace ?? INGRESS_NAMESPACE,
    ...(options.ingressAnnotations !== undefined ? { ingressAnnotations: options.ingressAnnotations } : {}),
    ...(options.ingressSourceCidrs !== undefined ? { ingressSourceCidrs: options.ingressSourceCidrs } : {}),
    ...(options.namespaceLabels !== undefined ? { namespaceLabels: options.namespaceLabels } : {}),
    secretValues: secretValues(stack, options),
    restrictEgress: k.restrictEgress,
    egress: k.egress,
    dependsOn: options.dependsOn,
  });
  if (k.serviceMonitor !== false) new ServiceMonitor(stack, "ServiceMonitor", { workload, labels: k.serviceMonitor.labels });
  const lb = `${workload.ingress.fqn}.status[0].load_balancer[0].ingress[0]`;
  const address = options.loadBalancerAddress === "either" ? `coalesce(${lb}.hostname, ${lb}.ip)` : `${lb}.${options.loadBalancerAddress}`;
  const lbUrl = `${options.httpsDomain !== undefined ? "https" : "http"}://\${${address}}`;
  const url = options.httpsDomain !== undefined ? `https://${options.httpsDomain}` : lbUrl;
  new TerraformOutput(stack, "url", { value: url, description: "Base URL of the service (the ingress controller's load balancer)" });
  new TerraformOutput(stack, "cluster_name", { value: options.clusterName });
  new TerraformOutput(stack, "kubeconfig_command", { value: options.kubeconfigCommand });
  new PostDeployHealthCheck(stack, "HealthCheck", {
    // With a domain: the load balancer itself, asked for the domain (Host and TLS name), whether or not DNS points there.
    url: lbUrl,
    // A host rule matches only its Host: the check sends it (the load balancer's own name would match nothing).
    ...(options.httpsDomain !== undefined ? { host: options.httpsDomain } : k.host !== undefined ? { host: k.host } : {}),
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

/** Warns at synth when the HPA's maximum (its pods' requests) cannot fit on the most nodes the cluster may have. */
export function warnIfPodsDoNotFit(
  stack: Construct,
  loaded: LoadedConfig,
  nodes: { readonly shape: NodeShape | undefined; readonly maxNodes: number; readonly nodeName: string; readonly maxNodesField: string },
): void {
  if (nodes.shape === undefined) return;
  const overflow = podsDoNotFit({
    maxReplicas: loaded.config.kubernetes.maxReplicas,
    cpuMillicores: loaded.spec.cpuMillicores,
    memoryMiB: loaded.spec.memoryMiB,
    maxNodes: nodes.maxNodes,
    node: nodes.shape,
    nodeName: nodes.nodeName,
    maxNodesField: nodes.maxNodesField,
  });
  if (overflow !== undefined) Annotations.of(stack).addWarning(overflow);
}
