import { join } from "node:path";
import { Testing } from "../../constructs/cdk";
import { parseConfig } from "../../stacks/config";
import { K8sStack } from "../../stacks/k8s";
import { ROOT } from "../helpers/processes";
import type { Synth } from "../helpers/synth";

const RELEASE = "b".repeat(64);

function synth(raw: unknown) {
  const stack = new K8sStack(Testing.app(), "k8s", { loaded: parseConfig(raw), appDir: join(ROOT, "app"), releaseId: RELEASE });
  return { stack, parsed: JSON.parse(Testing.synth(stack, true)) as Synth };
}
const refusals = (parsed: Synth) =>
  Object.values(parsed.resource.terraform_data ?? {})
    .flatMap((r) => (r.lifecycle as { precondition?: { error_message: string }[] } | undefined)?.precondition ?? [])
    .map((p) => p.error_message);

describe("k8s stack (your own cluster)", () => {
  const cluster = { context: "prod-eu", ingressClassName: "traefik", ingressNamespace: "traefik" };
  const { parsed } = synth({ image: "ghcr.io/acme/orders:1.4.2", kubernetes: { cluster } });

  it("deploys the workload and nothing else, through the named kubeconfig context", () => {
    expect(parsed.provider.kubernetes).toEqual([{ config_path: "~/.kube/config", config_context: "prod-eu" }]);
    expect(parsed.provider.helm).toBeUndefined();
    const types = Object.keys(parsed.resource).sort();
    expect(types).toEqual([
      "kubernetes_config_map_v1",
      "kubernetes_deployment_v1",
      "kubernetes_horizontal_pod_autoscaler_v2",
      "kubernetes_ingress_v1",
      "kubernetes_namespace_v1",
      "kubernetes_network_policy_v1",
      "kubernetes_pod_disruption_budget_v1",
      "kubernetes_service_v1",
      "terraform_data",
    ]);
    expect(refusals(parsed)).toEqual([]);
  });

  it("routes through the cluster's own ingress controller and admits traffic only from its namespace", () => {
    const ingress = Object.values(parsed.resource.kubernetes_ingress_v1)[0] as { spec: { ingress_class_name: string } };
    expect(ingress.spec.ingress_class_name).toBe("traefik");
    const policy = Object.values(parsed.resource.kubernetes_network_policy_v1).find((p) =>
      (p as { spec: { policy_types: string[] } }).spec.policy_types.includes("Ingress"),
    ) as { spec: { ingress: { from: unknown[] }[] } };
    expect(policy.spec.ingress[0].from).toEqual([{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "traefik" } } }]);
  });

  it("ends with the same health check, on the controller's address whichever kind it has", () => {
    expect(parsed.output.url.value).toMatch(
      /^http:\/\/\$\{coalesce\(kubernetes_ingress_v1\.Workload_Ingress_[0-9A-F]+\.status\[0\]\.load_balancer\[0\]\.ingress\[0\]\.hostname, kubernetes_ingress_v1\.Workload_Ingress_[0-9A-F]+\.status\[0\]\.load_balancer\[0\]\.ingress\[0\]\.ip\)\}$/,
    );
    const check = Object.entries(parsed.resource.terraform_data).find(([k]) => k.startsWith("HealthCheck"))?.[1] as {
      provisioner: { "local-exec": { command: string; environment: Record<string, string> } }[];
    };
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-hostnames 2");
    expect(check.provisioner[0]["local-exec"].environment.NODESCALE_RELEASE).toBe("ghcr.io/acme/orders:1.4.2");
  });

  it("asks the controller for kubernetes.host, which its host rule answers (not the load balancer's own name)", () => {
    const { parsed: withHost } = synth({
      image: "ghcr.io/acme/orders:1.4.2",
      kubernetes: { host: "api.example.com", cluster: { context: "prod-eu" } },
    });
    const check = Object.entries(withHost.resource.terraform_data).find(([k]) => k.startsWith("HealthCheck"))?.[1] as {
      provisioner: { "local-exec": { environment: Record<string, string> } }[];
    };
    expect(check.provisioner[0]["local-exec"].environment.NODESCALE_HOST).toBe("api.example.com");
  });

  it("builds and pushes to your repository when the config names one instead of an image", () => {
    const { stack, parsed: built } = synth({ kubernetes: { cluster: { context: "prod-eu", repository: "ghcr.io/acme/orders" } } });
    expect(stack.image?.imageRef).toBe("ghcr.io/acme/orders:r-bbbbbbbbbbbb");
    expect(built.provider.docker).toEqual([{ registry_auth: [{ address: "ghcr.io" }] }]);
    expect(Object.keys(built.resource.docker_registry_image ?? {})).toHaveLength(1);
  });

  it("stops its own plan, naming what to set, without a context or an image; the config stays valid for other stacks", () => {
    const { parsed: bare } = synth({});
    expect(refusals(bare)).toEqual([
      "kubernetes.cluster.context is not set in nodescale.config.json: name the kubeconfig context of your cluster (kubectl config get-contexts). Nothing was changed.",
      'the k8s stack needs an image your cluster can pull: set "image" (pushed by your pipeline) or kubernetes.cluster.repository (NodeScale builds and pushes there) in nodescale.config.json. Nothing was changed.',
    ]);
    const namespace = Object.values(bare.resource.kubernetes_namespace_v1)[0] as { depends_on: string[] };
    expect(namespace.depends_on).toEqual(["terraform_data.Refused"]);
  });

  it("refuses a repository with a tag in the config", () => {
    expect(() => parseConfig({ kubernetes: { cluster: { repository: "ghcr.io/acme/orders:1.0" } } })).toThrow(
      /kubernetes\.cluster\.repository: "ghcr\.io\/acme\/orders:1\.0" is not allowed: must be an image repository without a tag/,
    );
  });
});
