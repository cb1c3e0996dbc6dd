import { Release } from "@cdktf/provider-helm/lib/release";
import { Construct, type ITerraformDependable } from "../cdk";

/** Chart versions are pinned: an add-on upgrade is a reviewed change, never a surprise on redeploy. */
export const METRICS_SERVER_CHART_VERSION = "3.12.2";
export const INGRESS_NGINX_CHART_VERSION = "4.14.1";
/** Namespace and IngressClass of the controller; NodeWorkload's defaults point at these. */
export const INGRESS_NAMESPACE = "ingress-nginx";
export const INGRESS_CLASS = "nginx";

/** ClusterAddons' defaults: the constructor and the props' JSDoc read these. */
export const CLUSTER_ADDONS_DEFAULTS = { metricsServer: true, ingressNginx: true } as const;

export interface ClusterAddonsProps {
  /**
   * Annotations for the ingress controller's LoadBalancer Service (cloud-specific load balancer settings).
   * @default {}
   */
  readonly loadBalancerAnnotations?: Readonly<Record<string, string>>;
  /**
   * Install metrics-server (the HPA needs it); off where the platform already runs one.
   * @default true
   */
  readonly metricsServer?: boolean;
  /**
   * Install ingress-nginx (retired upstream on 2026-03-24; EKS uses the AWS Load Balancer Controller instead).
   * @default true
   */
  readonly ingressNginx?: boolean;
  /**
   * What must exist first (the node group, so the charts' pods can schedule).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/** metrics-server and (where still used) ingress-nginx through Helm. */
export class ClusterAddons extends Construct {
  /** The ingress controller's Helm release, when installed here. */
  readonly ingressNginx?: Release;
  /** metrics-server (the HPA's CPU source), when installed here. */
  readonly metricsServer?: Release;
  /** Every release installed here: what a workload waits for. */
  readonly installed: Release[];

  constructor(scope: Construct, id: string, props: ClusterAddonsProps = {}) {
    super(scope, id);
    const loadBalancerAnnotations = props.loadBalancerAnnotations ?? {};
    const installMetricsServer = props.metricsServer ?? CLUSTER_ADDONS_DEFAULTS.metricsServer;
    const installIngressNginx = props.ingressNginx ?? CLUSTER_ADDONS_DEFAULTS.ingressNginx;
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
    if (installIngressNginx) {
      const values = {
        controller: {
          replicaCount: 2,
          ingressClassResource: { name: INGRESS_CLASS },
          service: { type: "LoadBalancer", externalTrafficPolicy: "Local", annotations: loadBalancerAnnotations },
          config: { "use-forwarded-headers": "false", "server-tokens": "false", "upstream-keepalive-timeout": "60" },
          metrics: { enabled: true },
          podDisruptionBudget: { enabled: true, minAvailable: 1 },
          resources: { requests: { cpu: "100m", memory: "128Mi" } },
        },
      };
      this.ingressNginx = new Release(this, "IngressNginx", {
        name: INGRESS_NAMESPACE,
        namespace: INGRESS_NAMESPACE,
        createNamespace: true,
        repository: "https://kubernetes.github.io/ingress-nginx",
        chart: "ingress-nginx",
        version: INGRESS_NGINX_CHART_VERSION,
        atomic: true,
        wait: true,
        timeout: 900,
        values: [JSON.stringify(values)],
        dependsOn,
      });
    }
    this.installed = [...(this.ingressNginx ? [this.ingressNginx] : []), ...(this.metricsServer ? [this.metricsServer] : [])];
  }
}
