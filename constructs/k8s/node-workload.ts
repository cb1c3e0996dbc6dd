import { ConfigMapV1 } from "@cdktf/provider-kubernetes/lib/config-map-v1";
import {
  DeploymentV1,
  type DeploymentV1SpecTemplateSpecContainerVolumeMount,
  type DeploymentV1SpecTemplateSpecVolume,
} from "@cdktf/provider-kubernetes/lib/deployment-v1";
import { HorizontalPodAutoscalerV2 } from "@cdktf/provider-kubernetes/lib/horizontal-pod-autoscaler-v2";
import { IngressV1 } from "@cdktf/provider-kubernetes/lib/ingress-v1";
import { NamespaceV1 } from "@cdktf/provider-kubernetes/lib/namespace-v1";
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1";
import { SecretV1 } from "@cdktf/provider-kubernetes/lib/secret-v1";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1";
import { Construct, type ITerraformDependable } from "../cdk";
import { RELEASE_HEADERS_FILE, releaseHeadersSource } from "../release/release-headers";
import { parseCidr } from "../service/cidr";
import { invalidProp } from "../service/errors";
import { isPinnedImage, PINNED_IMAGE_RULE } from "../service/rules";
import type { NodeServiceSpec } from "../service/spec";
import { INGRESS_CLASS, INGRESS_NAMESPACE } from "./cluster-addons";
import { IMAGE_USER } from "./dockerfile";

/** Where the pods mount NodeScale's preload (outside the app's folder, read-only). */
const PRELOAD_DIR = "/opt/nodescale";

/** NodeWorkload's defaults: the constructor, the props' JSDoc and the golden path's config schema all read these. */
export const NODE_WORKLOAD_DEFAULTS = {
  minReplicas: 2,
  maxReplicas: 10,
  targetCpuPercent: 70,
  scaleDownStabilizationSeconds: 300,
  preStopSeconds: 5,
  automountServiceAccountToken: false,
  identifyAnswers: true,
  restrictEgress: true,
} as const;

/** Somewhere the pods may connect to (a database, an API): an address range and its ports. */
export interface EgressRule {
  /** IPv4 or IPv6 range, e.g. "10.0.42.0/24". */
  readonly cidr: string;
  /** TCP ports. */
  readonly ports: readonly number[];
}

export interface NodeWorkloadProps {
  readonly spec: NodeServiceSpec;
  /** Container image, pinned by tag or digest. */
  readonly image: string;
  /**
   * The container's command: one Node process, no supervisor in the pod.
   * @default ["node", spec.start]
   */
  readonly command?: readonly string[];
  /**
   * Namespace created for the workload.
   * @default spec.name
   */
  readonly namespace?: string;
  /**
   * Fewest pods; 2 or more keeps the service up through a node drain.
   * @default 2
   */
  readonly minReplicas?: number;
  /**
   * Most pods the HorizontalPodAutoscaler may run.
   * @default 10
   */
  readonly maxReplicas?: number;
  /**
   * Average CPU utilisation (of requests) the autoscaler aims at, 1-100.
   * @default 70
   */
  readonly targetCpuPercent?: number;
  /**
   * How long the autoscaler waits before scaling down, so a brief dip does not drop pods.
   * @default 300
   */
  readonly scaleDownStabilizationSeconds?: number;
  /**
   * Delay before the app is told to stop, so endpoints and load balancers stop routing to the pod first.
   * @default 5
   */
  readonly preStopSeconds?: number;
  /**
   * Pod termination grace period; must exceed preStopSeconds + spec.shutdownGraceSeconds.
   * @default spec.terminationGracePeriodSeconds(preStopSeconds)
   */
  readonly terminationGracePeriodSeconds?: number;
  /**
   * Ingress class.
   * @default INGRESS_CLASS - the class of the controller ClusterAddons installs
   */
  readonly ingressClassName?: string;
  /**
   * Namespace of the ingress controller, the only source of traffic the NetworkPolicy admits.
   * @default INGRESS_NAMESPACE - where ClusterAddons installs the controller
   */
  readonly ingressControllerNamespace?: string;
  /**
   * Address ranges the traffic comes from, for a load balancer that sends straight to pod IPs (the AWS Load Balancer
   * Controller's ALB, from its subnets): the NetworkPolicy admits these instead of the controller's namespace.
   * @default - the controller's namespace
   */
  readonly ingressSourceCidrs?: readonly string[];
  /**
   * The Ingress's annotations, for its controller.
   * @default - ingress-nginx's: body size from the spec, retry on another pod when one is going away
   */
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
  /**
   * Send `Strict-Transport-Security` with this max-age on answers to requests that reached the ingress over HTTPS
   * (`X-Forwarded-Proto: https`), through the release-headers preload (so only with `identifyAnswers`): for a
   * controller that ends TLS but adds no HSTS itself.
   * @default - no HSTS from the pods
   */
  readonly hstsSeconds?: number;
  /**
   * Extra labels on the workload's namespace (e.g. the AWS Load Balancer Controller's pod readiness gate injection).
   * @default {}
   */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /**
   * Host name the Ingress answers to.
   * @default - any host
   */
  readonly host?: string;
  /**
   * Secret holding the TLS certificate for `host`.
   * @default - no TLS on the Ingress
   */
  readonly tlsSecretName?: string;
  /**
   * UID (and GID) the container runs as.
   * @default IMAGE_USER - 10001, the user NodeScale's image runs as
   */
  readonly runAsUser?: number;
  /**
   * Service account the pods run as, e.g. one bound to an IAM role through EKS Pod Identity or IRSA (their
   * credentials do not need the API token below).
   * @default - the namespace's `default` account
   */
  readonly serviceAccountName?: string;
  /**
   * Mount the service account's Kubernetes API token, for an app that calls the Kubernetes API.
   * @default false
   */
  readonly automountServiceAccountToken?: boolean;
  /**
   * Load NodeScale's release-headers preload into the app's process (`NODE_OPTIONS=--require`, the file mounted
   * from a ConfigMap, so it works with any image): every answer names its pod and release, which is how the
   * post-deploy check counts pods and tells a new release from an old one for an app that reports neither, and a
   * stopping pod closes its keep-alive connections without racing the proxy. The same preload VMs run.
   * @default true
   */
  readonly identifyAnswers?: boolean;
  /**
   * The service's secrets as Terraform expressions (a sensitive variable, an SSM parameter's or a Secrets Manager
   * secret's value), by environment variable name: they go into a Kubernetes Secret and reach the container as
   * environment variables; pods roll when the Secret changes. Never pass literal values: they would sit in the
   * synthesized JSON.
   * @default {} - no Secret
   */
  readonly secretValues?: Readonly<Record<string, string>>;
  /**
   * Deny the pods every outgoing connection (default-deny egress) except DNS and `egress`: a compromised process
   * cannot reach the instance metadata, the Kubernetes API or the internet. Enforced where the cluster's network
   * enforces NetworkPolicy (the VPC CNI with network policy on, as EksCluster sets it; DOKS' Cilium).
   * @default true
   */
  readonly restrictEgress?: boolean;
  /**
   * Where the pods may connect besides DNS (the service's own dependencies), with `restrictEgress`.
   * @default []
   */
  readonly egress?: readonly EgressRule[];
  /**
   * Resources that must exist before the workload (the cluster's add-ons, the ingress controller, the image).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * kube-score checks the Deployment turns off (its `kube-score/ignore` annotation), each on purpose:
 * - container-resources: no CPU limit, as a limit throttles Node.js's event loop in bursts (requests size scheduling
 *   and the HPA; the memory limit is set);
 * - container-image-pull-policy: images are pinned (digest or release tag) and immutable, so IfNotPresent is exact;
 * - container-ephemeral-storage-request-and-limit: the root filesystem is read-only and /tmp an emptyDir capped by its
 *   sizeLimit;
 * - deployment-has-host-podantiaffinity: pods spread over hosts and zones by topologySpreadConstraints, which
 *   kube-score does not read (a hard anti-affinity would leave pods pending on a small cluster).
 */
export const KUBE_SCORE_IGNORED = [
  "container-resources",
  "container-image-pull-policy",
  "container-ephemeral-storage-request-and-limit",
  "deployment-has-host-podantiaffinity",
] as const;

/**
 * One Node.js process per pod: Deployment, Service, Ingress, HPA, PDB and NetworkPolicy with secure,
 * zero-downtime defaults, rendered with the Kubernetes provider's typed resources.
 */
export class NodeWorkload extends Construct {
  /** The workload's own namespace. */
  readonly namespace: NamespaceV1;
  /** The pods (no `replicas`: the HPA owns the count). Override a field with `deployment.addOverride(...)`. */
  readonly deployment: DeploymentV1;
  /** ClusterIP Service in front of the pods. */
  readonly service: ServiceV1;
  /** The Ingress routing to the Service. */
  readonly ingress: IngressV1;
  /** CPU autoscaling between minReplicas and maxReplicas. */
  readonly hpa: HorizontalPodAutoscalerV2;
  /** Keeps all but one pod up through voluntary disruptions (node drains). */
  readonly pdb: PodDisruptionBudgetV1;
  /** Denies the pods any outgoing connection but DNS and `egress` (with `restrictEgress`). */
  readonly egressPolicy?: NetworkPolicyV1;
  /** Admits traffic to the pods only from the ingress controller's namespace. */
  readonly networkPolicy: NetworkPolicyV1;
  /** The Secret holding `secretValues` (undefined without them). */
  readonly secret?: SecretV1;
  /** The release-headers preload the pods load (undefined when `identifyAnswers` is false). */
  readonly preload?: ConfigMapV1;
  /** The pod's grace, as derived (preStop + the app's grace + margin) or given. */
  readonly terminationGracePeriodSeconds: number;
  /** The labels that select this workload's pods (Service, HPA, policies; a ServiceMonitor's selector). */
  readonly selector: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: NodeWorkloadProps) {
    super(scope, id);
    const spec = props.spec;
    const namespaceName = props.namespace ?? spec.name;
    const minReplicas = props.minReplicas ?? NODE_WORKLOAD_DEFAULTS.minReplicas;
    const maxReplicas = props.maxReplicas ?? NODE_WORKLOAD_DEFAULTS.maxReplicas;
    const targetCpuPercent = props.targetCpuPercent ?? NODE_WORKLOAD_DEFAULTS.targetCpuPercent;
    const scaleDownStabilizationSeconds = props.scaleDownStabilizationSeconds ?? NODE_WORKLOAD_DEFAULTS.scaleDownStabilizationSeconds;
    const preStopSeconds = props.preStopSeconds ?? NODE_WORKLOAD_DEFAULTS.preStopSeconds;
    const terminationGracePeriodSeconds = props.terminationGracePeriodSeconds ?? spec.terminationGracePeriodSeconds(preStopSeconds);
    const ingressClassName = props.ingressClassName ?? INGRESS_CLASS;
    const ingressControllerNamespace = props.ingressControllerNamespace ?? INGRESS_NAMESPACE;
    const runAsUser = props.runAsUser ?? IMAGE_USER;
    const automountServiceAccountToken = props.automountServiceAccountToken ?? NODE_WORKLOAD_DEFAULTS.automountServiceAccountToken;
    const identifyAnswers = props.identifyAnswers ?? NODE_WORKLOAD_DEFAULTS.identifyAnswers;
    const restrictEgress = props.restrictEgress ?? NODE_WORKLOAD_DEFAULTS.restrictEgress;
    const egress = props.egress ?? [];
    const dependsOn = props.dependsOn ?? [];

    const fail = (field: string, value: unknown, allowed: string) => invalidProp("NodeWorkload", field, value, allowed);
    if (!isPinnedImage(props.image)) fail("image", props.image, `must be ${PINNED_IMAGE_RULE}`);
    if (!Number.isInteger(minReplicas) || minReplicas < 1) fail("minReplicas", minReplicas, "must be a whole number >= 1");
    if (!Number.isInteger(maxReplicas) || maxReplicas < minReplicas)
      fail("maxReplicas", maxReplicas, `must be a whole number >= minReplicas (${minReplicas})`);
    if (!Number.isInteger(targetCpuPercent) || targetCpuPercent < 1 || targetCpuPercent > 100) {
      fail("targetCpuPercent", targetCpuPercent, "must be a whole number 1-100");
    }
    if (!Number.isInteger(preStopSeconds) || preStopSeconds < 0) fail("preStopSeconds", preStopSeconds, "must be a whole number >= 0");
    if (terminationGracePeriodSeconds <= preStopSeconds + spec.shutdownGraceSeconds) {
      fail(
        "terminationGracePeriodSeconds",
        terminationGracePeriodSeconds,
        `must exceed preStopSeconds + service.shutdownGraceSeconds (${preStopSeconds} + ${spec.shutdownGraceSeconds} = ${preStopSeconds + spec.shutdownGraceSeconds}), or in-flight requests are killed`,
      );
    }
    for (const [i, rule] of egress.entries()) {
      if (parseCidr(rule.cidr) === undefined) fail(`egress[${i}].cidr`, rule.cidr, "must be an IPv4 or IPv6 range such as 10.0.42.0/24");
      if (rule.ports.length === 0 || rule.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
        fail(`egress[${i}].ports`, rule.ports, "must be one or more TCP ports 1-65535");
    }
    if (egress.length > 0 && !restrictEgress) fail("egress", egress, "lists exceptions to restrictEgress, which is off");
    if (props.hstsSeconds !== undefined && !identifyAnswers)
      fail("hstsSeconds", props.hstsSeconds, "needs identifyAnswers (the preload sends it)");
    if (props.hstsSeconds !== undefined && (!Number.isInteger(props.hstsSeconds) || props.hstsSeconds < 1))
      fail("hstsSeconds", props.hstsSeconds, "must be a whole number of seconds >= 1");
    if (props.tlsSecretName !== undefined && props.host === undefined)
      fail("tlsSecretName", props.tlsSecretName, "needs a host to issue the certificate for");
    if (!Number.isInteger(runAsUser) || runAsUser < 1000)
      fail("runAsUser", runAsUser, "must be a whole number >= 1000 (a non-system user)");
    this.terminationGracePeriodSeconds = terminationGracePeriodSeconds;

    const labels = { "app.kubernetes.io/name": spec.name, "app.kubernetes.io/managed-by": "nodescale" };
    const selector = { "app.kubernetes.io/name": spec.name };
    this.selector = selector;

    this.namespace = new NamespaceV1(this, "Namespace", {
      metadata: {
        name: namespaceName,
        labels: {
          ...(props.namespaceLabels ?? {}),
          ...labels,
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
        },
      },
      dependsOn,
    });
    const namespace = this.namespace.metadata.name;
    const meta = { name: spec.name, namespace, labels };
    // The pods report their image as their release, so the post-deploy check can tell old pods from new.
    const appEnv = spec.appEnv(spec.port, "0.0.0.0", { release: props.image });
    const volume: DeploymentV1SpecTemplateSpecVolume[] = [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }];
    const volumeMount: DeploymentV1SpecTemplateSpecContainerVolumeMount[] = [{ name: "tmp", mountPath: "/tmp" }];
    if (identifyAnswers) {
      this.preload = new ConfigMapV1(this, "Preload", {
        metadata: { name: `${spec.name}-nodescale-preload`, namespace, labels },
        data: { [RELEASE_HEADERS_FILE]: releaseHeadersSource() },
      });
      volume.push({ name: "nodescale", configMap: { name: this.preload.metadata.name, defaultMode: "0444" } });
      volumeMount.push({ name: "nodescale", mountPath: PRELOAD_DIR, readOnly: true });
      // service.env cannot hold NODE_OPTIONS (a reserved name: constructs/service/schema.ts), so this is the only one.
      appEnv.NODE_OPTIONS = `--require ${PRELOAD_DIR}/${RELEASE_HEADERS_FILE}`;
      if (props.hstsSeconds !== undefined) appEnv.NODESCALE_HSTS_SECONDS = String(props.hstsSeconds);
    }
    const secretValues = props.secretValues ?? {};
    if (Object.keys(secretValues).length > 0) {
      this.secret = new SecretV1(this, "Secrets", {
        metadata: { name: `${spec.name}-secrets`, namespace, labels },
        type: "Opaque",
        data: { ...secretValues },
      });
    }
    const secretName = this.secret?.metadata.name;
    const env = [
      ...Object.entries(appEnv).map(([name, value]) => ({ name, value })),
      ...Object.keys(secretValues).map((name) => ({ name, valueFrom: { secretKeyRef: { name: secretName as string, key: name } } })),
    ];
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
      httpGet: { path, port: "http" },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });

    this.deployment = new DeploymentV1(this, "Deployment", {
      metadata: { ...meta, annotations: { "kube-score/ignore": KUBE_SCORE_IGNORED.join(",") } },
      // No `replicas`: the HPA owns the count, so an apply never resets it.
      spec: {
        selector: { matchLabels: selector },
        revisionHistoryLimit: 5,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "0", maxSurge: "25%" } },
        template: {
          // A changed Secret changes its resource version, and so the pod template: the pods roll to the new values.
          metadata: {
            labels,
            annotations: {
              // The conventional scrape annotations (Prometheus' kubernetes_sd relabelling, most agents): the pod's
              // own metrics listener, reachable inside the cluster only.
              "prometheus.io/scrape": "true",
              "prometheus.io/port": String(spec.metricsPort),
              "prometheus.io/path": "/metrics",
              ...(this.secret ? { "nodescale.dev/secrets-version": this.secret.metadata.resourceVersion } : {}),
            },
          },
          spec: {
            ...(props.serviceAccountName !== undefined ? { serviceAccountName: props.serviceAccountName } : {}),
            automountServiceAccountToken,
            enableServiceLinks: false,
            terminationGracePeriodSeconds,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: String(runAsUser),
              runAsGroup: String(runAsUser),
              fsGroup: String(runAsUser),
              seccompProfile: { type: "RuntimeDefault" },
            },
            topologySpreadConstraint: [
              {
                maxSkew: 1,
                topologyKey: "topology.kubernetes.io/zone",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: [{ matchLabels: selector }],
              },
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: [{ matchLabels: selector }],
              },
            ],
            container: [
              {
                name: "app",
                image: props.image,
                imagePullPolicy: "IfNotPresent",
                // One process per pod: the HPA scales, not an in-pod cluster.
                command: [...(props.command ?? ["node", spec.start])],
                port: [
                  { name: "http", containerPort: spec.port, protocol: "TCP" },
                  { name: "metrics", containerPort: spec.metricsPort, protocol: "TCP" },
                ],
                env,
                resources: {
                  requests: { cpu: `${spec.cpuMillicores}m`, memory: `${spec.memoryMiB}Mi` },
                  limits: { memory: `${spec.memoryMiB}Mi` },
                },
                readinessProbe: probe(spec.readyPath, 5, 2),
                livenessProbe: probe(spec.healthPath, 10, 3),
                startupProbe: probe(spec.healthPath, 2, 30),
                lifecycle: { preStop: [{ exec: { command: ["sleep", String(preStopSeconds)] } }] },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  runAsNonRoot: true,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMount,
              },
            ],
            volume,
          },
        },
      },
      waitForRollout: true,
    });

    this.service = new ServiceV1(this, "Service", {
      metadata: meta,
      spec: {
        type: "ClusterIP",
        selector,
        // The Ingress routes to "http" only; "metrics" is for scrapers inside the cluster (a ServiceMonitor).
        port: [
          { name: "http", port: 80, targetPort: "http", protocol: "TCP" },
          { name: "metrics", port: spec.metricsPort, targetPort: "metrics", protocol: "TCP" },
        ],
      },
    });

    this.ingress = new IngressV1(this, "Ingress", {
      metadata: {
        ...meta,
        annotations: props.ingressAnnotations ?? {
          "nginx.ingress.kubernetes.io/proxy-body-size": `${spec.maxBodySizeMiB}m`,
          // Retry idempotent requests on another pod when one is going away.
          "nginx.ingress.kubernetes.io/proxy-next-upstream": "error timeout",
          "nginx.ingress.kubernetes.io/proxy-next-upstream-tries": "3",
        },
      },
      spec: {
        ingressClassName,
        rule: [
          {
            host: props.host,
            http: {
              path: [{ path: "/", pathType: "Prefix", backend: { service: { name: this.service.metadata.name, port: { name: "http" } } } }],
            },
          },
        ],
        tls: props.tlsSecretName && props.host ? [{ hosts: [props.host], secretName: props.tlsSecretName }] : undefined,
      },
      waitForLoadBalancer: true,
    });

    this.hpa = new HorizontalPodAutoscalerV2(this, "Autoscaler", {
      metadata: meta,
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: this.deployment.metadata.name },
        minReplicas,
        maxReplicas,
        metric: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: targetCpuPercent } } }],
        behavior: {
          scaleDown: [
            { stabilizationWindowSeconds: scaleDownStabilizationSeconds, policy: [{ type: "Percent", value: 50, periodSeconds: 60 }] },
          ],
          scaleUp: [{ stabilizationWindowSeconds: 0, policy: [{ type: "Percent", value: 100, periodSeconds: 30 }] }],
        },
      },
    });

    this.pdb = new PodDisruptionBudgetV1(this, "DisruptionBudget", {
      metadata: meta,
      spec: { selector: { matchLabels: selector }, maxUnavailable: "1" },
    });

    this.networkPolicy = new NetworkPolicyV1(this, "NetworkPolicy", {
      metadata: { ...meta, name: `${spec.name}-ingress-only` },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from:
              props.ingressSourceCidrs !== undefined
                ? props.ingressSourceCidrs.map((cidr) => ({ ipBlock: { cidr } }))
                : [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ingressControllerNamespace } } }],
            ports: [{ port: "http", protocol: "TCP" }],
          },
          {
            // Scrapers run in the cluster (any namespace's pods); nothing from outside reaches the metrics port.
            from: [{ namespaceSelector: {} }],
            ports: [{ port: "metrics", protocol: "TCP" }],
          },
        ],
      },
    });

    if (restrictEgress) {
      this.egressPolicy = new NetworkPolicyV1(this, "EgressPolicy", {
        metadata: { ...meta, name: `${spec.name}-egress` },
        spec: {
          podSelector: { matchLabels: selector },
          policyTypes: ["Egress"],
          egress: [
            // Cluster DNS only (CoreDNS/kube-dns in kube-system), so names still resolve.
            {
              to: [
                {
                  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                  podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
                },
              ],
              ports: [
                { port: "53", protocol: "UDP" },
                { port: "53", protocol: "TCP" },
              ],
            },
            ...egress.map((rule) => ({
              to: [{ ipBlock: { cidr: rule.cidr } }],
              ports: rule.ports.map((p) => ({ port: String(p), protocol: "TCP" })),
            })),
          ],
        },
      });
    }
  }
}
