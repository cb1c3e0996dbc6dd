import { Release } from "@cdktf/provider-helm/lib/release";
import { Construct, type ITerraformDependable } from "../cdk";

/**
 * Traefik Proxy, chart 41.3.0 from https://traefik.github.io/charts (traefik/traefik-helm-chart traefik/Chart.yaml,
 * commit a8a66d00, 2026-08-21). Maintained by Traefik Labs; serves the Kubernetes Ingress API.
 */
export const TRAEFIK_CHART_VERSION = "41.3.0";
export const TRAEFIK_NAMESPACE = "traefik";
export const TRAEFIK_INGRESS_CLASS = "traefik";

export interface TraefikIngressProps {
  /**
   * Annotations for its LoadBalancer Service (the cloud's load balancer settings).
   * @default {}
   */
  readonly loadBalancerAnnotations?: Readonly<Record<string, string>>;
  /**
   * Seconds an idle connection to a pod is kept: below Node's keep-alive, so Traefik never reuses one the app closed.
   * @default 60
   */
  readonly upstreamIdleTimeoutSeconds?: number;
  /**
   * Redirect every plain-HTTP request to HTTPS (308) at the entry point (ACME HTTP-01 challenges follow the redirect).
   * @default false
   */
  readonly redirectHttpToHttps?: boolean;
  /**
   * What must exist first (the cluster's nodes).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The ingress controller on DOKS in place of the retired ingress-nginx: two replicas with a disruption budget behind
 * the cloud's load balancer (`externalTrafficPolicy: Local` keeps client addresses), IngressClass `traefik`, only the
 * Kubernetes Ingress provider, JSON access logs.
 */
export class TraefikIngress extends Construct {
  readonly release: Release;

  constructor(scope: Construct, id: string, props: TraefikIngressProps = {}) {
    super(scope, id);
    const loadBalancerAnnotations = props.loadBalancerAnnotations ?? {};
    const idleSeconds = props.upstreamIdleTimeoutSeconds ?? 60;
    const values = {
      deployment: { replicas: 2 },
      podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
      ingressClass: { enabled: true, isDefaultClass: false, name: TRAEFIK_INGRESS_CLASS },
      providers: { kubernetesIngress: { enabled: true }, kubernetesCRD: { enabled: false } },
      service: { annotations: loadBalancerAnnotations, spec: { type: "LoadBalancer", externalTrafficPolicy: "Local" } },
      logs: { access: { enabled: true, format: "json" } },
      ...(props.redirectHttpToHttps
        ? { ports: { web: { http: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true } } } } } }
        : {}),
      additionalArguments: [`--serverstransport.forwardingtimeouts.idleconntimeout=${idleSeconds}s`],
      resources: { requests: { cpu: "100m", memory: "128Mi" } },
    };
    this.release = new Release(this, "Release", {
      name: "traefik",
      namespace: TRAEFIK_NAMESPACE,
      createNamespace: true,
      repository: "https://traefik.github.io/charts",
      chart: "traefik",
      version: TRAEFIK_CHART_VERSION,
      atomic: true,
      wait: true,
      timeout: 900,
      values: [JSON.stringify(values)],
      dependsOn: props.dependsOn ?? [],
    });
  }
}
