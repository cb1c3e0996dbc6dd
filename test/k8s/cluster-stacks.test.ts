import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Testing } from "../../constructs/cdk";
import { AppImage } from "../../constructs/k8s/app-image";
import { AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION } from "../../constructs/k8s/aws-load-balancer-controller";
import { CERT_MANAGER_CHART_VERSION } from "../../constructs/k8s/cert-manager";
import { METRICS_SERVER_CHART_VERSION } from "../../constructs/k8s/cluster-addons";
import { CLUSTER_AUTOSCALER_APP_VERSION, CLUSTER_AUTOSCALER_CHART_VERSION } from "../../constructs/k8s/cluster-autoscaler";
import { EKS_CLUSTER_DEFAULTS } from "../../constructs/k8s/eks-cluster";
import { TRAEFIK_CHART_VERSION } from "../../constructs/k8s/traefik";
import { parseConfig } from "../../stacks/config";
import { DoksStack } from "../../stacks/doks";
import { EksStack } from "../../stacks/eks";
import { ROOT } from "../helpers/processes";
import { all, inventory, only, type Synth } from "../helpers/synth";

const RELEASE = "a".repeat(64);

const SAMPLE_APP = join(ROOT, "app");
const EXPRESS_APP = join(ROOT, "test", "fixtures", "express-app");

function synthEks(raw: unknown = {}, appDir = SAMPLE_APP) {
  const stack = new EksStack(Testing.app(), "eks", { loaded: parseConfig(raw), appDir, releaseId: RELEASE });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}
function synthDoks(raw: unknown = {}, appDir = SAMPLE_APP) {
  const stack = new DoksStack(Testing.app(), "doks", { loaded: parseConfig(raw), appDir, releaseId: RELEASE });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

describe("eks stack", () => {
  const { parsed } = synthEks({ kubernetes: { eks: { publicAccessCidrs: ["203.0.113.0/24"] } } });

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("enforces NetworkPolicy (VPC CNI network policy on) and keeps pods away from the node's metadata (IMDSv2, hop limit 1)", () => {
    const cni = all(parsed.resource, "aws_eks_addon").find((a) => a.addon_name === "vpc-cni");
    expect(JSON.parse(cni?.configuration_values as string)).toEqual({ enableNetworkPolicy: "true" });
    const template = only(parsed.resource, "aws_launch_template");
    expect(template.metadata_options).toEqual({ http_tokens: "required", http_endpoint: "enabled", http_put_response_hop_limit: 1 });
    expect(template.block_device_mappings).toMatchObject([{ ebs: { encrypted: "true", volume_type: "gp3" } }]);
    expect(only(parsed.resource, "aws_eks_node_group").launch_template).toEqual({
      id: expect.stringMatching(/^\$\{aws_launch_template\.Cluster_NodeLaunchTemplate_\w+\.id\}$/),
      version: expect.stringMatching(/latest_version/),
    });
    // The workload's namespace denies egress by default (only DNS), enforced by the CNI above.
    const egress = all(parsed.resource, "kubernetes_network_policy_v1").find((p) =>
      (p.spec as { policy_types: string[] }).policy_types.includes("Egress"),
    );
    expect(egress).toBeDefined();
  });

  it("spans two zones with public and private subnets and one NAT gateway by default", () => {
    const subnets = all(parsed.resource, "aws_subnet");
    expect(subnets).toHaveLength(4);
    expect(subnets.filter((s) => (s.tags as Record<string, string>)["kubernetes.io/role/internal-elb"] === "1")).toHaveLength(2);
    expect(all(parsed.resource, "aws_nat_gateway")).toHaveLength(1);
    expect(only(parsed.resource, "aws_flow_log")).toMatchObject({ traffic_type: "ALL" });
  });

  it("stops at plan when asked for more zones than the region has, instead of doubling up a zone", () => {
    const five = synthEks({ kubernetes: { eks: { zones: 5 } } }).parsed as Synth & { locals: Record<string, number> };
    const [local, count] = Object.entries(five.locals).find(([k]) => k.startsWith("Cluster_ZonesWanted")) ?? [];
    expect(count).toBe(5);
    const first = all(five.resource, "aws_subnet").find((s) => (s.tags as Record<string, string>).Name === "hello-node-public-0") ?? {};
    expect((first.lifecycle as { precondition: unknown[] }).precondition).toEqual([
      {
        condition: expect.stringMatching(
          new RegExp(`^\\$\\{\\(?local\\.${local} <= length\\(data\\.aws_availability_zones\\.Cluster_Zones_[0-9A-F]+\\.names\\)\\)?\\}$`),
        ),
        error_message: "EksNodeCluster: zones is 5, more than the region's available zones; ask for fewer",
      },
    ]);
  });

  it("puts a NAT gateway in every zone when asked", () => {
    const perZone = synthEks({ kubernetes: { eks: { natGateways: "perZone", zones: 3 } } }).parsed;
    expect(all(perZone.resource, "aws_nat_gateway")).toHaveLength(3);
  });

  it("pins the version, limits the public endpoint, logs everything and encrypts secrets with KMS", () => {
    const cluster = only(parsed.resource, "aws_eks_cluster");
    expect(cluster.version).toBe("1.35");
    expect(cluster.vpc_config).toMatchObject({
      endpoint_private_access: true,
      endpoint_public_access: true,
      public_access_cidrs: ["203.0.113.0/24"],
    });
    expect(cluster.enabled_cluster_log_types).toEqual(["api", "audit", "authenticator", "controllerManager", "scheduler"]);
    expect(cluster.encryption_config).toMatchObject({ resources: ["secrets"] });
    expect(only(parsed.resource, "aws_kms_key")).toMatchObject({ enable_key_rotation: true });
  });

  it("turns the public endpoint off when no CIDR is listed", () => {
    const privateOnly = only(synthEks().parsed.resource, "aws_eks_cluster");
    expect(privateOnly.vpc_config).toMatchObject({ endpoint_private_access: true, endpoint_public_access: false });
    expect(privateOnly.vpc_config).not.toHaveProperty("public_access_cidrs");
  });

  it("runs nodes in private subnets with autoscaling bounds and no SSH", () => {
    const nodes = only(parsed.resource, "aws_eks_node_group");
    expect(nodes.scaling_config).toEqual({ min_size: 2, desired_size: 2, max_size: 5 });
    expect(nodes).not.toHaveProperty("remote_access");
    expect((nodes.subnet_ids as string[]).every((id) => id.includes("Private"))).toBe(true);
  });

  it("installs the core add-ons, metrics-server, the AWS Load Balancer Controller and the Cluster Autoscaler, pinned; no ingress-nginx", () => {
    expect(
      all(parsed.resource, "aws_eks_addon")
        .map((a) => a.addon_name)
        .sort(),
    ).toEqual(["coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"]);
    const releases = Object.fromEntries(all(parsed.resource, "helm_release").map((r) => [r.chart, r.version]));
    expect(releases).toEqual({
      "metrics-server": METRICS_SERVER_CHART_VERSION,
      "aws-load-balancer-controller": AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
      "cluster-autoscaler": CLUSTER_AUTOSCALER_CHART_VERSION,
    });
    expect(JSON.stringify(parsed)).not.toContain("ingress-nginx");
  });

  it("grows the node group with the pods (Cluster Autoscaler, pinned), allowed to scale only this cluster's groups", () => {
    const autoscaler = all(parsed.resource, "helm_release").find((r) => r.chart === "cluster-autoscaler") as {
      version: string;
      values: string[];
    };
    expect(autoscaler.version).toBe(CLUSTER_AUTOSCALER_CHART_VERSION);
    expect(JSON.parse(autoscaler.values[0])).toMatchObject({
      cloudProvider: "aws",
      awsRegion: "us-east-1",
      rbac: { serviceAccount: { name: "cluster-autoscaler" } },
    });
    const permissions = Object.entries(parsed.data.aws_iam_policy_document).find(([k]) =>
      k.startsWith("NodeAutoscaler_Permissions"),
    )?.[1] as {
      statement: { sid: string; actions: string[]; resources: string[]; condition?: unknown[] }[];
    };
    const scale = permissions.statement.find((s) => s.sid === "ScaleThisClusterOnly");
    expect(scale?.actions).toEqual(["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]);
    expect(scale?.condition).toEqual([
      {
        test: "StringEquals",
        variable: expect.stringMatching(/^aws:ResourceTag\/k8s\.io\/cluster-autoscaler\/\$\{aws_eks_cluster\./),
        values: ["owned"],
      },
    ]);
    // Everything else it may do only reads.
    const discover = permissions.statement.find((s) => s.sid === "Discover");
    expect(discover?.actions.every((a) => /:(Describe|Get)/.test(a))).toBe(true);
    expect(
      all(parsed.resource, "aws_eks_pod_identity_association")
        .map((a) => a.service_account)
        .sort(),
    ).toEqual(["aws-load-balancer-controller", "cluster-autoscaler"]);
    // The pinned autoscaler is made for the default Kubernetes minor.
    expect(CLUSTER_AUTOSCALER_APP_VERSION.startsWith(`${EKS_CLUSTER_DEFAULTS.version}.`)).toBe(true);
  });

  it("says at synth when the HPA's maximum cannot fit on the most nodes the group may have", () => {
    const warnings = (raw: unknown) =>
      synthEks(raw)
        .stack.node.metadata.filter((m) => m.type === "@cdktf/warn")
        .map((m) => String(m.data));
    expect(warnings({ kubernetes: { eks: { publicAccessCidrs: ["203.0.113.0/24"] } } })).toEqual([]);
    expect(warnings({ kubernetes: { maxReplicas: 40, eks: { publicAccessCidrs: ["203.0.113.0/24"], maxNodes: 3 } } })).toEqual([
      expect.stringMatching(/^kubernetes\.maxReplicas 40 pods .* do not fit on kubernetes\.eks\.maxNodes 3 x t3\.medium/),
    ]);
  });

  it("gives the controller exactly the upstream IAM policy, through Pod Identity, and tells it the region and VPC", () => {
    const policy = only(parsed.resource, "aws_iam_policy");
    expect(JSON.parse(policy.policy as string)).toEqual(
      JSON.parse(readFileSync(join(ROOT, "templates", "aws", "aws-load-balancer-controller-iam-policy.json"), "utf8")),
    );
    // Pinned copy of kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json.
    expect(
      createHash("sha256")
        .update(policy.policy as string)
        .digest("hex"),
    ).toBe("16f232c9d9f79366fe949c4550ad517a202380058a9e48d45a4e215044a20a6a");
    expect(
      all(parsed.resource, "aws_eks_pod_identity_association").find((a) => a.service_account === "aws-load-balancer-controller"),
    ).toMatchObject({
      namespace: "kube-system",
    });
    const trust = Object.entries(parsed.data.aws_iam_policy_document).find(([k]) => k.startsWith("LoadBalancerController"))?.[1] as {
      statement: unknown[];
    };
    // Only this account's pods of this cluster: an association made elsewhere cannot hand the role out.
    expect(trust.statement).toEqual([
      {
        actions: ["sts:AssumeRole", "sts:TagSession"],
        principals: [{ type: "Service", identifiers: ["pods.eks.amazonaws.com"] }],
        condition: [
          {
            test: "StringEquals",
            variable: "aws:SourceAccount",
            values: [expect.stringMatching(/^\$\{data\.aws_caller_identity\.LoadBalancerController_PodIdentityAccount_\w+\.account_id\}$/)],
          },
          {
            test: "ArnEquals",
            variable: "aws:SourceArn",
            values: [
              expect.stringMatching(
                /^arn:\$\{data\.aws_partition\.\w+\.partition\}:eks:\$\{data\.aws_region\.\w+\.(region|name)\}:\$\{data\.aws_caller_identity\.\w+\.account_id\}:cluster\/\$\{aws_eks_cluster\.\w+\.name\}$/,
              ),
            ],
          },
        ],
      },
    ]);
    const values = JSON.parse(
      ((all(parsed.resource, "helm_release").find((r) => r.chart === "aws-load-balancer-controller")?.values ?? [""]) as string[])[0],
    );
    expect(values).toMatchObject({ region: "us-east-1", ingressClass: "alb", createIngressClassResource: true, replicaCount: 2 });
    expect(values.vpcId).toMatch(/^\$\{aws_vpc\./);
  });

  it("routes through aws_route resources of their own, never inline route blocks: the internet gateway publicly, a NAT gateway privately", () => {
    for (const table of Object.values(parsed.resource.aws_route_table as Record<string, object>)) expect(table).not.toHaveProperty("route");
    const routes = Object.values(parsed.resource.aws_route as Record<string, Record<string, string>>);
    expect(routes.every((r) => r.destination_cidr_block === "0.0.0.0/0")).toBe(true);
    expect(routes.filter((r) => r.gateway_id?.includes("aws_internet_gateway."))).toHaveLength(1);
    expect(routes.filter((r) => r.nat_gateway_id?.includes("aws_nat_gateway.")).length).toBe(routes.length - 1);
  });

  it("adopts its VPC's default security group with no rules, so that group allows nothing", () => {
    const fallback = only(parsed.resource, "aws_default_security_group");
    expect(fallback.vpc_id).toMatch(/^\$\{aws_vpc\.Cluster_Vpc_[0-9A-F]+\.id\}$/);
    expect(fallback).not.toHaveProperty("ingress");
    expect(fallback).not.toHaveProperty("egress");
  });

  it("routes through an internet-facing ALB to pod IPs, admitting traffic only from the public subnets", () => {
    const ingress = only(parsed.resource, "kubernetes_ingress_v1") as {
      metadata: { annotations: Record<string, string> };
      spec: Record<string, unknown>;
    };
    expect(ingress.spec.ingress_class_name).toBe("alb");
    expect(ingress.metadata.annotations).toMatchObject({
      "alb.ingress.kubernetes.io/scheme": "internet-facing",
      "alb.ingress.kubernetes.io/target-type": "ip",
      "alb.ingress.kubernetes.io/healthcheck-path": "/ready",
      "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP":80}]',
    });
    const admitted = all(parsed.resource, "kubernetes_network_policy_v1").find((p) =>
      (p.spec as { policy_types: string[] }).policy_types.includes("Ingress"),
    ) as { spec: { ingress: { from: unknown[] }[] } };
    expect(admitted.spec.ingress[0].from).toEqual([
      { ip_block: { cidr: expect.stringMatching(/data\.aws_subnet\.PublicSubnet0\.cidr_block/) } },
      { ip_block: { cidr: expect.stringMatching(/data\.aws_subnet\.PublicSubnet1\.cidr_block/) } },
    ]);
    const namespace = only(parsed.resource, "kubernetes_namespace_v1") as { metadata: { labels: Record<string, string> } };
    expect(namespace.metadata.labels["elbv2.k8s.aws/pod-readiness-gate-inject"]).toBe("enabled");
  });

  it("serves HTTPS for the domain with an ACM certificate (TLS 1.3 policy, HSTS, HTTP redirected) and checks it by Host", () => {
    const { parsed: https } = synthEks({
      service: { domain: "api.example.com" },
      kubernetes: { eks: { route53ZoneId: "Z0123456789ABCDEFGHIJ" } },
    });
    expect(only(https.resource, "aws_acm_certificate")).toMatchObject({ domain_name: "api.example.com", validation_method: "DNS" });
    const ingress = only(https.resource, "kubernetes_ingress_v1") as {
      metadata: { annotations: Record<string, string> };
      spec: { rule: { host: string }[] };
    };
    expect(ingress.spec.rule[0].host).toBe("api.example.com");
    expect(ingress.metadata.annotations).toMatchObject({
      "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP":80},{"HTTPS":443}]',
      "alb.ingress.kubernetes.io/ssl-redirect": "443",
      "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
      "alb.ingress.kubernetes.io/listener-attributes.HTTPS-443":
        "routing.http.response.strict_transport_security.header_value=max-age=63072000",
    });
    expect(ingress.metadata.annotations["alb.ingress.kubernetes.io/certificate-arn"]).toMatch(/aws_acm_certificate_validation\./);
    expect(https.output.url.value).toBe("https://api.example.com");
    const check = Object.entries(https.resource.terraform_data).find(([k]) => k.startsWith("HealthCheck"))?.[1] as {
      provisioner: { "local-exec": { environment: Record<string, string> } }[];
    };
    expect(check.provisioner[0]["local-exec"].environment.NODESCALE_HOST).toBe("api.example.com");
    expect(check.provisioner[0]["local-exec"].environment.NODESCALE_URL).toMatch(/^https:\/\/\$\{kubernetes_ingress_v1\..+\.hostname\}$/);
  });

  it("keeps images in an encrypted ECR repository with scan on push and immutable tags", () => {
    expect(only(parsed.resource, "aws_ecr_repository")).toMatchObject({
      image_tag_mutability: "IMMUTABLE",
      image_scanning_configuration: { scan_on_push: true },
      encryption_configuration: [{ encryption_type: "KMS" }],
    });
  });

  it("builds and pushes the bundled app under a fixed tag when no image is configured, and runs it by digest", () => {
    const image = only(parsed.resource, "docker_image");
    expect(image.name).toMatch(/:r-aaaaaaaaaaaa$/);
    expect(image.build).toMatchObject({
      context: expect.stringMatching(/^assets\/Image_Context_[0-9A-F]+\/[0-9A-F]+$/),
      dockerfile: "nodescale.Dockerfile",
    });
    const container = (only(parsed.resource, "kubernetes_deployment_v1").spec as { template: { spec: { container: { image: string }[] } } })
      .template.spec.container[0];
    // A tag can be moved in a registry; the digest of the push cannot.
    expect(container.image).toMatch(
      /^\$\{aws_ecr_repository\.Cluster_Repository_\w+\.repository_url\}@\$\{docker_registry_image\.Image_Push_\w+\.sha256_digest\}$/,
    );
  });

  it("runs in an existing VPC when given one: no VPC, subnet or NAT of its own, nodes in the given private subnets", () => {
    const existing = synthEks({
      kubernetes: {
        eks: {
          vpcId: "vpc-0abc1234",
          privateSubnetIds: ["subnet-0aaa1111", "subnet-0bbb2222"],
          publicSubnetIds: ["subnet-0ccc3333", "subnet-0ddd4444"],
        },
      },
    }).parsed;
    for (const type of ["aws_vpc", "aws_subnet", "aws_nat_gateway", "aws_flow_log", "aws_internet_gateway", "aws_default_security_group"]) {
      expect(all(existing.resource, type)).toEqual([]);
    }
    expect(only(existing.resource, "aws_eks_node_group").subnet_ids).toEqual(["subnet-0aaa1111", "subnet-0bbb2222"]);
    expect((only(existing.resource, "aws_eks_cluster").vpc_config as { subnet_ids: string[] }).subnet_ids).toEqual([
      "subnet-0aaa1111",
      "subnet-0bbb2222",
      "subnet-0ccc3333",
      "subnet-0ddd4444",
    ]);
  });

  it("refuses part of an existing VPC in the config, naming the keys that go together", () => {
    expect(() => parseConfig({ kubernetes: { eks: { vpcId: "vpc-0abc1234" } } })).toThrow(
      'kubernetes.eks.vpcId: "vpc-0abc1234" is not allowed: kubernetes.eks.vpcId, privateSubnetIds and publicSubnetIds go together: an existing VPC and its subnets',
    );
  });

  it("uses a configured image as it is, with no build and no Docker provider", () => {
    const given = synthEks({ image: "ghcr.io/acme/api:2.0.0" }).parsed;
    expect(given.resource.docker_image).toBeUndefined();
    expect(given.provider.docker).toBeUndefined();
    expect(given.resource.aws_ecr_repository).toBeUndefined(); // nothing is built here, so no repository
    expect(JSON.stringify(given.resource.kubernetes_deployment_v1)).toContain('"image":"ghcr.io/acme/api:2.0.0"');
  });

  it("configures the Kubernetes and Helm providers from the cluster's own outputs", () => {
    const kubernetes = parsed.provider.kubernetes[0];
    expect(kubernetes.host).toMatch(/^\$\{aws_eks_cluster\.Cluster_\w+\.endpoint\}$/);
    expect(kubernetes.exec).toEqual([expect.objectContaining({ command: "aws", args: expect.arrayContaining(["eks", "get-token"]) })]);
    expect(parsed.provider.helm[0].kubernetes).toMatchObject({ host: kubernetes.host });
  });

  it("outputs url, cluster name and the kubeconfig command, and health-checks the url across pods", () => {
    expect(parsed.output.url.value).toMatch(
      /^http:\/\/\$\{kubernetes_ingress_v1\.Workload_Ingress_\w+\.status\[0\]\.load_balancer\[0\]\.ingress\[0\]\.hostname\}$/,
    );
    expect(parsed.output.kubeconfig_command.value).toContain("aws eks update-kubeconfig --name");
    const check = Object.values(parsed.resource.terraform_data)[0] as { provisioner: { "local-exec": { command: string } }[] };
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-hostnames 2");
  });
});

describe("doks stack", () => {
  const { parsed } = synthDoks({ kubernetes: { doks: { haControlPlane: true } } });

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("adds a ServiceMonitor for the metrics port only when asked, from NodeScale's chart, with the labels given", () => {
    expect(all(parsed.resource, "helm_release").some((r) => String(r.name).endsWith("-metrics"))).toBe(false);
    const { parsed: monitored } = synthDoks({ kubernetes: { serviceMonitor: { labels: { release: "kube-prometheus-stack" } } } });
    const monitor = all(monitored.resource, "helm_release").find((r) => r.name === "hello-node-metrics") as {
      chart: string;
      namespace: string;
      values: string[];
      depends_on: string[];
    };
    expect(monitor.chart).toMatch(/^assets\/ServiceMonitor_Chart_\w+\/[0-9A-F]+$/);
    expect(JSON.parse(monitor.values[0])).toEqual({
      name: expect.stringMatching(/kubernetes_service_v1\.Workload_Service_\w+\.metadata\[0\]\.name/),
      namespace: expect.stringMatching(/kubernetes_service_v1\.Workload_Service_\w+\.metadata\[0\]\.namespace/),
      selector: { "app.kubernetes.io/name": "hello-node" },
      interval: "30s",
      labels: { release: "kube-prometheus-stack" },
    });
    expect(monitor.depends_on).toEqual([expect.stringMatching(/^kubernetes_service_v1\.Workload_Service_/)]);
    // The chart's monitor scrapes the Service's "metrics" port at /metrics.
    const template = readFileSync(
      join(ROOT, "templates", "charts", "nodescale-service-monitor", "templates", "service-monitor.yaml"),
      "utf8",
    );
    expect(template).toContain("kind: ServiceMonitor");
    expect(template).toMatch(/- port: metrics\n\s+path: \/metrics/);
  });

  it("serves HTTPS for the domain with a certificate cert-manager gets from Let's Encrypt and renews; HTTP redirects", () => {
    const { parsed: https } = synthDoks({ service: { domain: "api.example.com" }, kubernetes: { doks: { acmeEmail: "ops@example.com" } } });
    const releases = all(https.resource, "helm_release");
    const certManager = releases.find((r) => r.chart === "cert-manager") as { version: string; values: string[] };
    expect(certManager.version).toBe(CERT_MANAGER_CHART_VERSION);
    expect(JSON.parse(certManager.values[0])).toMatchObject({ crds: { enabled: true, keep: true } });
    const issuer = releases.find((r) => r.name === "nodescale-acme-issuer") as { chart: string; values: string[]; depends_on: string[] };
    expect(issuer.chart).toMatch(/^assets\/CertManager_IssuerChart_\w+\/[0-9A-F]+$/);
    expect(issuer.depends_on).toEqual([expect.stringMatching(/^helm_release\.CertManager_Release_/)]);
    expect(JSON.parse(issuer.values[0])).toEqual({
      name: "nodescale-acme",
      server: "https://acme-v02.api.letsencrypt.org/directory",
      email: "ops@example.com",
      ingressClassName: "traefik",
    });
    const traefik = releases.find((r) => r.chart === "traefik") as { values: string[] };
    expect(JSON.parse(traefik.values[0]).ports).toEqual({
      web: { http: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true } } } },
    });
    const ingress = only(https.resource, "kubernetes_ingress_v1") as {
      metadata: { annotations: Record<string, string> };
      spec: { tls: unknown[]; rule: { host: string }[] };
    };
    expect(ingress.metadata.annotations).toEqual({ "cert-manager.io/cluster-issuer": "nodescale-acme" });
    expect(ingress.spec.tls).toEqual([{ hosts: ["api.example.com"], secret_name: "hello-node-tls" }]);
    expect(https.output.url.value).toBe("https://api.example.com");
    const env = (
      only(https.resource, "kubernetes_deployment_v1").spec as {
        template: { spec: { container: { env: { name: string; value: string }[] }[] } };
      }
    ).template.spec.container[0].env;
    expect(env).toContainEqual({ name: "NODESCALE_HSTS_SECONDS", value: "63072000" });
  });

  it("runs the image it pushed to DOCR by digest (DOCR has no tag immutability)", () => {
    const container = (only(parsed.resource, "kubernetes_deployment_v1").spec as { template: { spec: { container: { image: string }[] } } })
      .template.spec.container[0];
    expect(container.image).toMatch(
      /^registry\.digitalocean\.com\/\$\{digitalocean_container_registry\.\w+\.name\}\/hello-node@\$\{docker_registry_image\.Image_Push_\w+\.sha256_digest\}$/,
    );
  });

  it("says at synth when the HPA's maximum cannot fit on the node pool's maximum", () => {
    const { stack } = synthDoks({ service: { cpuMillicores: 1000 }, kubernetes: { maxReplicas: 12, doks: { maxNodes: 3 } } });
    expect(stack.node.metadata.filter((m) => m.type === "@cdktf/warn").map((m) => String(m.data))).toEqual([
      "kubernetes.maxReplicas 12 pods (1000m CPU, 512 MiB each) do not fit on kubernetes.doks.maxNodes 3 x s-2vcpu-4gb (about 1 such pods per node, counting 80% of its 2 vCPU / 4 GiB): at its maximum the HPA would leave 9 pending. Raise kubernetes.doks.maxNodes or lower kubernetes.maxReplicas.",
    ]);
  });

  it("routes through Traefik (pinned, two replicas, a disruption budget), never ingress-nginx", () => {
    const releases = Object.fromEntries(all(parsed.resource, "helm_release").map((r) => [r.chart, r.version]));
    expect(releases).toEqual({ "metrics-server": METRICS_SERVER_CHART_VERSION, traefik: TRAEFIK_CHART_VERSION });
    expect(JSON.stringify(parsed)).not.toContain("ingress-nginx");
    const traefik = all(parsed.resource, "helm_release").find((r) => r.chart === "traefik") as { values: string[]; namespace: string };
    expect(traefik.namespace).toBe("traefik");
    expect(JSON.parse(traefik.values[0])).toMatchObject({
      deployment: { replicas: 2 },
      podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
      ingressClass: { name: "traefik" },
      service: { spec: { externalTrafficPolicy: "Local" } },
      additionalArguments: ["--serverstransport.forwardingtimeouts.idleconntimeout=60s"],
    });
    const ingress = only(parsed.resource, "kubernetes_ingress_v1") as {
      metadata: { annotations?: Record<string, string> };
      spec: Record<string, unknown>;
    };
    expect(ingress.spec.ingress_class_name).toBe("traefik");
    expect(ingress.metadata.annotations ?? {}).toEqual({});
    const admitted = all(parsed.resource, "kubernetes_network_policy_v1").find((p) =>
      (p.spec as { policy_types: string[] }).policy_types.includes("Ingress"),
    ) as { spec: { ingress: { from: unknown[] }[] } };
    expect(admitted.spec.ingress[0].from).toEqual([{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "traefik" } } }]);
  });

  it("pins the minor version and upgrades patches in a maintenance window with surge", () => {
    expect(only(parsed.data, "digitalocean_kubernetes_versions")).toMatchObject({ version_prefix: "1.35." });
    expect(only(parsed.resource, "digitalocean_kubernetes_cluster")).toMatchObject({
      auto_upgrade: true,
      surge_upgrade: true,
      ha: true,
      registry_integration: true,
      maintenance_policy: { day: "sunday", start_time: "04:00" },
    });
  });

  it("autoscales the node pool and sets no fixed node count", () => {
    const pool = only(parsed.resource, "digitalocean_kubernetes_cluster").node_pool as Record<string, unknown>;
    expect(pool).toMatchObject({ auto_scale: true, min_nodes: 2, max_nodes: 5 });
    expect(pool).not.toHaveProperty("node_count");
  });

  it("runs in its own VPC with a registry wired to the cluster", () => {
    expect(only(parsed.resource, "digitalocean_vpc")).toMatchObject({ ip_range: "10.41.0.0/20" });
    expect(only(parsed.resource, "digitalocean_container_registry")).toMatchObject({ subscription_tier_slug: "basic" });
    expect(only(parsed.resource, "docker_image").name).toMatch(
      /^registry\.digitalocean\.com\/\$\{digitalocean_container_registry\.\w+\.name\}\/hello-node:r-aaaaaaaaaaaa$/,
    );
  });

  it("runs the same workload as EKS: same security context, probes and autoscaler", () => {
    const eks = synthEks().parsed;
    const pick = (p: Synth) => {
      const d = only(p.resource, "kubernetes_deployment_v1") as { spec: { template: { spec: Record<string, unknown> } } };
      const { container, ...pod } = d.spec.template.spec;
      // The image, and so the release the pods report, differ by design: each cloud has its own registry.
      const { image: _image, env, ...rest } = (container as Record<string, unknown>[])[0];
      rest.env = (env as { name: string }[]).filter((e) => e.name !== "NODESCALE_RELEASE");
      return { pod, container: rest, hpa: only(p.resource, "kubernetes_horizontal_pod_autoscaler_v2").spec };
    };
    expect(pick(parsed)).toEqual(pick(eks));
  });

  it("outputs the load balancer's IP as the url and ends with a health check", () => {
    expect(parsed.output.url.value).toMatch(/\.ingress\[0\]\.ip\}$/);
    expect(parsed.output.kubeconfig_command.value).toMatch(/^doctl kubernetes cluster kubeconfig save /);
    expect(all(parsed.resource, "terraform_data")).toHaveLength(1);
  });
});

describe("your own app (service.source) on the Kubernetes stacks", () => {
  const own = { service: { name: "orders", source: "../orders", start: "server.js" } };

  it("builds its image from its own sources with NodeScale's Dockerfile and runs its entry file", () => {
    for (const { stack, parsed } of [synthEks(own, EXPRESS_APP), synthDoks(own, EXPRESS_APP)]) {
      const built = stack.node.findAll().find((c): c is AppImage => c instanceof AppImage);
      expect(built?.files).toEqual(["package-lock.json", "package.json", "server.js"]);
      expect(built?.dockerfile).toContain('CMD ["node", "server.js"]');
      const image = only(parsed.resource, "docker_image");
      expect(image.build).toMatchObject({ dockerfile: "nodescale.Dockerfile" });
      expect(image.lifecycle).toBeUndefined();
      const container = (only(parsed.resource, "kubernetes_deployment_v1") as { spec: { template: { spec: { container: Container[] } } } })
        .spec.template.spec.container[0];
      expect(container.image).toMatch(/@\$\{docker_registry_image\.Image_Push_\w+\.sha256_digest\}$/);
      expect(container.command).toEqual(["node", "server.js"]);
    }
  });

  it("loads the release-headers preload from a ConfigMap, so the health check counts pods of an app that reports nothing", () => {
    const { parsed } = synthEks(own, EXPRESS_APP);
    const preload = only(parsed.resource, "kubernetes_config_map_v1") as { data: Record<string, string> };
    expect(preload.data["release-headers.cjs"]).toContain("x-nodescale-release");
    const pod = (only(parsed.resource, "kubernetes_deployment_v1") as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
    expect(pod.container[0].env).toContainEqual({ name: "NODE_OPTIONS", value: "--require /opt/nodescale/release-headers.cjs" });
    expect(pod.container[0].volume_mount).toContainEqual({ name: "nodescale", mount_path: "/opt/nodescale", read_only: true });
    expect(preload).toMatchObject({ metadata: { name: "orders-nodescale-preload" } });
    expect(pod.volume).toContainEqual({
      name: "nodescale",
      config_map: { name: "${kubernetes_config_map_v1.Workload_Preload_E170B56C.metadata[0].name}", default_mode: "0444" },
    });
  });

  it("runs a given image instead of building one", () => {
    const withImage = synthEks({ ...own, image: "ghcr.io/acme/orders:1.4.2" }, EXPRESS_APP).parsed;
    expect(all(withImage.resource, "docker_image")).toEqual([]);
    const deployment = only(withImage.resource, "kubernetes_deployment_v1") as { spec: { template: { spec: { container: Container[] } } } };
    expect(deployment.spec.template.spec.container[0]).toMatchObject({
      image: "ghcr.io/acme/orders:1.4.2",
      command: ["node", "server.js"],
    });
  });
});

interface Container {
  image: string;
  command: string[];
  env: { name: string; value: string }[];
  volume_mount: Record<string, unknown>[];
}
interface PodSpec {
  container: Container[];
  volume: Record<string, unknown>[];
}

describe("secrets on the Kubernetes stacks", () => {
  const VALUE = "never-in-synth-9f1c";
  const secrets = {
    DB_PASSWORD: "ssm:/orders/db-password",
    API_KEY: "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/api-AbCdEf",
    WEBHOOK_TOKEN: "env:ORDERS_WEBHOOK_TOKEN",
  };

  it("fills a Secret from SSM, Secrets Manager and a sensitive variable on EKS, and the pods read it as environment", () => {
    process.env.ORDERS_WEBHOOK_TOKEN = VALUE;
    process.env.TF_VAR_ORDERS_WEBHOOK_TOKEN = VALUE;
    try {
      const { parsed, json } = synthEks({ service: { secrets } });
      expect(json).not.toContain(VALUE);
      expect(only(parsed.data, "aws_ssm_parameter")).toMatchObject({ name: "/orders/db-password", with_decryption: true });
      expect(only(parsed.data, "aws_secretsmanager_secret_version")).toMatchObject({
        secret_id: secrets.API_KEY.slice("secretsmanager:".length),
      });
      expect((parsed as unknown as { variable: Record<string, unknown> }).variable.ORDERS_WEBHOOK_TOKEN).toMatchObject({
        sensitive: true,
        type: "string",
        nullable: false,
      });
      const secret = only(parsed.resource, "kubernetes_secret_v1") as { data: Record<string, string>; metadata: { name: string } };
      expect(Object.keys(secret.data).sort()).toEqual(["API_KEY", "DB_PASSWORD", "WEBHOOK_TOKEN"]);
      expect(secret.data.WEBHOOK_TOKEN).toBe("${var.ORDERS_WEBHOOK_TOKEN}");
      expect(secret.data.DB_PASSWORD).toMatch(/^\$\{data\.aws_ssm_parameter\.Secret_DB_PASSWORD\.value\}$/);
      const deployment = only(parsed.resource, "kubernetes_deployment_v1") as {
        spec: {
          template: {
            metadata: { annotations: Record<string, string> };
            spec: { container: { env: { name: string; value_from?: unknown }[] }[] };
          };
        };
      };
      const env = deployment.spec.template.spec.container[0].env;
      expect(env.filter((e) => e.value_from !== undefined)).toEqual(
        ["DB_PASSWORD", "API_KEY", "WEBHOOK_TOKEN"].map((name) => ({
          name,
          value_from: { secret_key_ref: { name: "${kubernetes_secret_v1.Workload_Secrets_CAC18A16.metadata[0].name}", key: name } },
        })),
      );
      expect(deployment.spec.template.metadata.annotations["nodescale.dev/secrets-version"]).toContain("resource_version");
    } finally {
      delete process.env.ORDERS_WEBHOOK_TOKEN;
      delete process.env.TF_VAR_ORDERS_WEBHOOK_TOKEN;
    }
  });

  it("stops the doks plan for references it has no AWS credentials to read, and takes env: ones", () => {
    const { parsed } = synthDoks({ service: { secrets } });
    const refused = parsed.resource.terraform_data.SecretsRefused as { lifecycle: { precondition: { error_message: string }[] } };
    expect(refused.lifecycle.precondition[0].error_message).toBe(
      `this stack has no AWS credentials to read service.secrets.DB_PASSWORD is ssm:/orders/db-password, service.secrets.API_KEY is ${secrets.API_KEY}: on doks and k8s give secrets as env:NAME (a sensitive Terraform variable, TF_VAR_NAME), or deploy with eks`,
    );
    const secret = only(parsed.resource, "kubernetes_secret_v1") as { data: Record<string, string> };
    expect(secret.data).toEqual({ WEBHOOK_TOKEN: "${var.ORDERS_WEBHOOK_TOKEN}" });
  });
});
