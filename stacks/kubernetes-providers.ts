import { HelmProvider } from "@cdktf/provider-helm/lib/provider";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider";
import type { Construct } from "../constructs/cdk";

/** How the Kubernetes and Helm providers reach a cluster created in the same stack. */
export interface ClusterAccess {
  readonly host: string;
  /** PEM, already base64-decoded. */
  readonly clusterCaCertificate: string;
  /** A static token (DOKS) ... */
  readonly token?: string;
  /** ... or a command that prints one (EKS: `aws eks get-token`). */
  readonly exec?: { readonly command: string; readonly args: string[] };
}

/**
 * Configures both providers from the cluster's own outputs. Trade-off (see README): replacing the cluster
 * needs two applies, because the providers cannot be configured from values that are not yet known.
 */
export function configureClusterProviders(stack: Construct, access: ClusterAccess): void {
  const exec = access.exec
    ? { apiVersion: "client.authentication.k8s.io/v1beta1", command: access.exec.command, args: access.exec.args }
    : undefined;
  new KubernetesProvider(stack, "Kubernetes", {
    host: access.host,
    clusterCaCertificate: access.clusterCaCertificate,
    token: access.token,
    exec: exec ? [exec] : undefined,
  });
  new HelmProvider(stack, "Helm", {
    kubernetes: { host: access.host, clusterCaCertificate: access.clusterCaCertificate, token: access.token, exec },
  });
}
