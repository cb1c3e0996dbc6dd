import { Release } from "@cdktf/provider-helm/lib/release";
import { Construct, type ITerraformDependable } from "../cdk";

/**
 * Chart versions are pinned: an add-on upgrade is a reviewed change, never a surprise on redeploy. metrics-server
 * chart 3.13.1 (app 0.8.1) from https://kubernetes-sigs.github.io/metrics-server/ (kubernetes-sigs/metrics-server
 * charts/metrics-server/Chart.yaml, commit 5ed5d3a2, 2026-08-04).
 */
export const METRICS_SERVER_CHART_VERSION = "3.13.1";
/**
 * The IngressClass and namespace NodeWorkload assumes when not told (the `k8s` stack's defaults for a cluster you
 * run: ingress-nginx's). NodeScale's own clusters use the AWS Load Balancer Controller (EKS) and Traefik (DOKS).
 */
export const INGRESS_NAMESPACE = "ingress-nginx";
export const INGRESS_CLASS = "nginx";

/** ClusterAddons' defaults: the constructor and the props' JSDoc read these. */
export const CLUSTER_ADDONS_DEFAULTS = { metricsServer: true } as const;

export interface ClusterAddonsProps {
  /**
   * Install metrics-server (the HPA needs it); off where the platform already runs one.
   * @default true
   */
  readonly metricsServer?: boolean;
  /**
   * What must exist first (the node group, so the charts' pods can schedule).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/** metrics-server through Helm, the same on every cluster (the ingress controller is each cloud's own). */
export class ClusterAddons extends Construct {
  /** metrics-server (the HPA's CPU source), when installed here. */
  readonly metricsServer?: Release;
  /** Every release installed here: what a workload waits for. */
  readonly installed: Release[];

  constructor(scope: Construct, id: string, props: ClusterAddonsProps = {}) {
    super(scope, id);
    const installMetricsServer = props.metricsServer ?? CLUSTER_ADDONS_DEFAULTS.metricsServer;
    const dependsOn = props.dependsOn ?? [];

    if (installMetricsServer) {
      this.metricsServer = new Release(this, "MetricsServer", {
        name: "metrics-server",
        namespace: "kube-system",
        repository: "https://kubernetes-sigs.github.io/metrics-server/",
        chart: "metrics-server",
        version: METRICS_SERVER_CHART_VERSION,
        atomic: true,
        wait: true,
        dependsOn,
      });
    }
    this.installed = this.metricsServer ? [this.metricsServer] : [];
  }
}
