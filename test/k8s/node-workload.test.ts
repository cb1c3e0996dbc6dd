import { Testing } from "../../constructs/cdk";
import { NodeWorkload, type NodeWorkloadProps } from "../../constructs/k8s/node-workload";
import { releaseHeadersSource } from "../../constructs/release/release-headers";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { all, inventory, only, type Resources } from "../helpers/synth";

const spec = NodeServiceSpec.parse({ name: "orders", port: 3000, shutdownGraceSeconds: 10, memoryMiB: 256, cpuMillicores: 200 });
const IMAGE = "ghcr.io/acme/orders:1.4.2";

function synth(props: Partial<NodeWorkloadProps> = {}): { json: string; resource: Resources } {
  const json = Testing.synthScope((scope) => {
    new NodeWorkload(scope, "Workload", { spec, image: IMAGE, ...props });
  });
  return { json, resource: (JSON.parse(json) as { resource: Resources }).resource };
}

const { resource } = synth();
/** The NetworkPolicy of one direction ("Ingress" or "Egress"). */
const policy = (resources: Resources, direction: string) =>
  all(resources, "kubernetes_network_policy_v1").find((p) =>
    ((p.spec as { policy_types: string[] }).policy_types ?? []).includes(direction),
  ) as { spec: Record<string, unknown> };
const deployment = only(resource, "kubernetes_deployment_v1") as { spec: Record<string, unknown>; wait_for_rollout: boolean };
const podSpec = (deployment.spec.template as { spec: Record<string, unknown> }).spec;
const container = (podSpec.container as Record<string, unknown>[])[0];

describe("NodeWorkload", () => {
  it("keeps its resource addresses (a renamed address replaces the resource)", () => {
    expect(inventory({ resource })).toMatchSnapshot();
  });

  it("leaves replicas to the HPA: the Deployment sets none", () => {
    expect(deployment.spec).not.toHaveProperty("replicas");
    expect(only(resource, "kubernetes_horizontal_pod_autoscaler_v2").spec).toMatchObject({
      min_replicas: 2,
      max_replicas: 10,
      scale_target_ref: {
        api_version: "apps/v1",
        kind: "Deployment",
        name: expect.stringMatching(/^\$\{kubernetes_deployment_v1\.Workload_Deployment_[0-9A-F]+\.metadata\[0\]\.name\}$/),
      },
      metric: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", average_utilization: 70 } } }],
      behavior: { scale_down: [{ stabilization_window_seconds: 300 }] },
    });
  });

  it("rolls out with no pod unavailable and waits for the rollout", () => {
    expect(deployment.spec.strategy).toEqual({ type: "RollingUpdate", rolling_update: { max_unavailable: "0", max_surge: "25%" } });
    expect(deployment.wait_for_rollout).toBe(true);
  });

  it("runs one Node process per pod with a pinned image", () => {
    expect(container).toMatchObject({
      image: IMAGE,
      command: ["node", "dist/main.js"],
      port: [
        { container_port: 3000, name: "http", protocol: "TCP" },
        { container_port: 9464, name: "metrics", protocol: "TCP" },
      ],
    });
    expect(container.env).toContainEqual({ name: "HOST", value: "0.0.0.0" });
    expect(container.env).toContainEqual({ name: "SHUTDOWN_GRACE_SECONDS", value: "10" });
    expect(container.env).toContainEqual({ name: "NODESCALE_RELEASE", value: IMAGE });
  });

  it("probes readiness on /ready and liveness on /health", () => {
    expect(container.readiness_probe).toMatchObject({ http_get: { path: "/ready", port: "http" } });
    expect(container.liveness_probe).toMatchObject({ http_get: { path: "/health", port: "http" } });
  });

  it("sets requests and a memory limit from the spec", () => {
    expect(container.resources).toEqual({ requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "256Mi" } });
  });

  it("locks the pod down by default", () => {
    expect(podSpec.automount_service_account_token).toBe(false);
    expect(podSpec.security_context).toEqual({
      run_as_non_root: true,
      run_as_user: "10001",
      run_as_group: "10001",
      fs_group: "10001",
      seccomp_profile: { type: "RuntimeDefault" },
    });
    expect(container.security_context).toEqual({
      allow_privilege_escalation: false,
      read_only_root_filesystem: true,
      run_as_non_root: true,
      capabilities: { drop: ["ALL"] },
    });
    // Writable: /tmp only. NodeScale's preload is mounted read-only.
    expect(container.volume_mount).toEqual([
      { name: "tmp", mount_path: "/tmp" },
      { name: "nodescale", mount_path: "/opt/nodescale", read_only: true },
    ]);
    expect(podSpec.volume).toEqual([
      { name: "tmp", empty_dir: { size_limit: "64Mi" } },
      { name: "nodescale", config_map: { name: expect.stringContaining("kubernetes_config_map_v1."), default_mode: "0444" } },
    ]);
    expect(
      (only(resource, "kubernetes_namespace_v1").metadata as { labels: Record<string, string> }).labels[
        "pod-security.kubernetes.io/enforce"
      ],
    ).toBe("restricted");
  });

  it("drains before it stops: preStop delay, then the app's grace, inside the termination grace period", () => {
    expect(container.lifecycle).toEqual({ pre_stop: [{ exec: { command: ["sleep", "5"] } }] });
    expect(podSpec.termination_grace_period_seconds).toBe(20);
  });

  it("names the kube-score checks it turns off, on the Deployment itself", () => {
    const metadata = (deployment as unknown as { metadata: { annotations: Record<string, string> } }).metadata;
    expect(metadata.annotations["kube-score/ignore"]).toBe(
      "container-resources,container-image-pull-policy,container-ephemeral-storage-request-and-limit,deployment-has-host-podantiaffinity",
    );
  });

  it("spreads pods across zones and nodes", () => {
    const keys = (podSpec.topology_spread_constraint as { topology_key: string }[]).map((c) => c.topology_key);
    expect(keys).toEqual(["topology.kubernetes.io/zone", "kubernetes.io/hostname"]);
  });

  it("exposes a ClusterIP Service behind an nginx Ingress, with optional host and TLS", () => {
    expect(only(resource, "kubernetes_service_v1").spec).toMatchObject({ type: "ClusterIP" });
    expect(only(resource, "kubernetes_ingress_v1").spec).toMatchObject({ ingress_class_name: "nginx" });
    const tls = only(synth({ host: "api.example.com", tlsSecretName: "api-tls" }).resource, "kubernetes_ingress_v1").spec as Record<
      string,
      unknown
    >;
    expect(tls.tls).toEqual([{ hosts: ["api.example.com"], secret_name: "api-tls" }]);
    expect((tls.rule as { host: string }[])[0].host).toBe("api.example.com");
  });

  it("keeps a disruption budget and admits traffic only from the ingress controller's namespace", () => {
    expect(only(resource, "kubernetes_pod_disruption_budget_v1").spec).toMatchObject({ max_unavailable: "1" });
    expect(policy(resource, "Ingress").spec).toMatchObject({
      policy_types: ["Ingress"],
      ingress: [
        {
          from: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }],
          ports: [{ port: "http", protocol: "TCP" }],
        },
        // Metrics: scrapers inside the cluster only, on their own port.
        { from: [{ namespace_selector: {} }], ports: [{ port: "metrics", protocol: "TCP" }] },
      ],
    });
  });

  it("exposes metrics to scrapers in the cluster only: annotations, a named port, never the Ingress's backend", () => {
    const template = (
      only(resource, "kubernetes_deployment_v1").spec as { template: { metadata: { annotations: Record<string, string> } } }
    ).template;
    expect(template.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9464",
      "prometheus.io/path": "/metrics",
    });
    expect((only(resource, "kubernetes_service_v1").spec as { port: unknown[] }).port).toEqual([
      { name: "http", port: 80, target_port: "http", protocol: "TCP" },
      { name: "metrics", port: 9464, target_port: "metrics", protocol: "TCP" },
    ]);
    const paths = JSON.stringify((only(resource, "kubernetes_ingress_v1").spec as { rule: unknown }).rule);
    expect(paths).toContain('"port":{"name":"http"}');
    expect(paths).not.toContain("metrics");
  });

  it("denies the pods every outgoing connection but cluster DNS and the listed dependencies", () => {
    const dns = {
      to: [
        {
          namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "kube-system" } },
          pod_selector: { match_labels: { "k8s-app": "kube-dns" } },
        },
      ],
      ports: [
        { port: "53", protocol: "UDP" },
        { port: "53", protocol: "TCP" },
      ],
    };
    expect(policy(resource, "Egress").spec).toMatchObject({ policy_types: ["Egress"], egress: [dns] });
    const withDatabase = synth({ egress: [{ cidr: "10.0.42.0/24", ports: [5432] }] }).resource;
    expect((policy(withDatabase, "Egress").spec as { egress: unknown[] }).egress).toEqual([
      dns,
      { to: [{ ip_block: { cidr: "10.0.42.0/24" } }], ports: [{ port: "5432", protocol: "TCP" }] },
    ]);
    expect(all(synth({ restrictEgress: false }).resource, "kubernetes_network_policy_v1")).toHaveLength(1);
  });

  it.each<[string, Partial<NodeWorkloadProps>, string]>([
    [
      "an egress range that is not one",
      { egress: [{ cidr: "10.0.42.0/33", ports: [5432] }] },
      'NodeWorkload egress[0].cidr: "10.0.42.0/33" is not allowed: must be an IPv4 or IPv6 range such as 10.0.42.0/24',
    ],
    [
      "egress exceptions with egress unrestricted",
      { restrictEgress: false, egress: [{ cidr: "10.0.42.0/24", ports: [5432] }] },
      'NodeWorkload egress: [{"cidr":"10.0.42.0/24","ports":[5432]}] is not allowed: lists exceptions to restrictEgress, which is off',
    ],
    [
      "an unpinned image",
      { image: "ghcr.io/acme/orders" },
      'NodeWorkload image: "ghcr.io/acme/orders" is not allowed: must be pinned by a fixed tag or digest (not "latest", not untagged), such as "ghcr.io/acme/api:1.4.2"',
    ],
    [
      "the latest tag",
      { image: "ghcr.io/acme/orders:latest" },
      'NodeWorkload image: "ghcr.io/acme/orders:latest" is not allowed: must be pinned by a fixed tag or digest (not "latest", not untagged), such as "ghcr.io/acme/api:1.4.2"',
    ],
    [
      "min > max replicas",
      { minReplicas: 5, maxReplicas: 3 },
      "NodeWorkload maxReplicas: 3 is not allowed: must be a whole number >= minReplicas (5)",
    ],
    ["zero replicas", { minReplicas: 0 }, "NodeWorkload minReplicas: 0 is not allowed: must be a whole number >= 1"],
    ["a CPU target of 0", { targetCpuPercent: 0 }, "NodeWorkload targetCpuPercent: 0 is not allowed: must be a whole number 1-100"],
    ["a CPU target over 100", { targetCpuPercent: 150 }, "NodeWorkload targetCpuPercent: 150 is not allowed: must be a whole number 1-100"],
    ["a negative preStop", { preStopSeconds: -1 }, "NodeWorkload preStopSeconds: -1 is not allowed: must be a whole number >= 0"],
    [
      "a grace period shorter than the drain",
      { terminationGracePeriodSeconds: 12, preStopSeconds: 5 },
      "NodeWorkload terminationGracePeriodSeconds: 12 is not allowed: must exceed preStopSeconds + service.shutdownGraceSeconds (5 + 10 = 15), or in-flight requests are killed",
    ],
    [
      "TLS without a host",
      { tlsSecretName: "tls" },
      'NodeWorkload tlsSecretName: "tls" is not allowed: needs a host to issue the certificate for',
    ],
    ["a system UID", { runAsUser: 0 }, "NodeWorkload runAsUser: 0 is not allowed: must be a whole number >= 1000 (a non-system user)"],
  ])("refuses %s, quoting the value", (_, props, message) => {
    expect(() => synth(props)).toThrow(new Error(message));
  });
});

describe("NodeWorkload escape hatches", () => {
  it("runs the pods as a named service account, with the API token only when asked", () => {
    const named = only(synth({ serviceAccountName: "orders-aws" }).resource, "kubernetes_deployment_v1") as {
      spec: { template: { spec: Record<string, unknown> } };
    };
    expect(named.spec.template.spec).toMatchObject({ service_account_name: "orders-aws", automount_service_account_token: false });
    expect(podSpec.service_account_name).toBeUndefined();
    const withToken = only(synth({ automountServiceAccountToken: true }).resource, "kubernetes_deployment_v1") as typeof named;
    expect(withToken.spec.template.spec.automount_service_account_token).toBe(true);
  });

  it("ships the preload's source unchanged, with nothing Terraform would read as an expression", () => {
    const data = (only(resource, "kubernetes_config_map_v1") as { data: Record<string, string> }).data["release-headers.cjs"];
    expect(data).toBe(releaseHeadersSource());
    // Terraform reads "${" and "%{" in any string as an expression or a directive (`terraform validate`: Invalid reference).
    expect(data).not.toMatch(/[$%]\{/);
  });

  it("loads NodeScale's preload through NODE_OPTIONS, a name the app cannot set, and drops it when asked by name", () => {
    expect(() => NodeServiceSpec.parse({ env: { NODE_OPTIONS: "--max-old-space-size=400" } })).toThrow(
      /service\.env\.NODE_OPTIONS: "--max-old-space-size=400" is not allowed: the name NODE_OPTIONS changes how the machine's programs load or run/,
    );
    const withPreload = only(resource, "kubernetes_deployment_v1") as {
      spec: { template: { spec: { container: { env: { name: string; value: string }[] }[] } } };
    };
    expect(withPreload.spec.template.spec.container[0].env).toContainEqual({
      name: "NODE_OPTIONS",
      value: "--require /opt/nodescale/release-headers.cjs",
    });
    const plain = synth({ identifyAnswers: false }).resource;
    expect(plain.kubernetes_config_map_v1).toBeUndefined();
    const pod = (only(plain, "kubernetes_deployment_v1") as { spec: { template: { spec: { volume: unknown[] } } } }).spec.template.spec;
    expect(pod.volume).toEqual([{ name: "tmp", empty_dir: { size_limit: "64Mi" } }]);
    expect(JSON.stringify(pod)).not.toContain("NODE_OPTIONS");
  });
});
