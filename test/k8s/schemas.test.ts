import { join } from "node:path";
import { Testing } from "../../constructs/cdk";
import { parseConfig } from "../../stacks/config";
import { DoksStack } from "../../stacks/doks";
import { EksStack } from "../../stacks/eks";
import { K8sStack } from "../../stacks/k8s";
import { kubernetesManifests, schemaProblems } from "../helpers/k8s-manifests";
import { ROOT } from "../helpers/processes";
import type { Synth } from "../helpers/synth";

// Every kubernetes_* resource the stacks synthesize, as the Kubernetes object it stands for, validated against the
// Kubernetes OpenAPI schema by kubernetes-models (a maintained validator from npm, compiled from the upstream schema).
const appDir = join(ROOT, "app");
const releaseId = "a".repeat(64);
const everything = {
  service: { domain: "api.example.com", secrets: { API_TOKEN: "env:NODESCALE_SCHEMA_TOKEN" } },
  kubernetes: { egress: [{ cidr: "10.0.42.0/24", ports: [5432] }] },
};

function resources(stack: EksStack | DoksStack | K8sStack) {
  return (JSON.parse(Testing.synth(stack, true)) as Synth).resource;
}

describe("Kubernetes objects against the upstream schema", () => {
  it.each<[string, () => EksStack | DoksStack | K8sStack]>([
    ["eks", () => new EksStack(Testing.app(), "eks", { loaded: parseConfig({}), appDir, releaseId })],
    [
      "eks with a domain, a secret and egress",
      () => new EksStack(Testing.app(), "eks", { loaded: parseConfig(everything), appDir, releaseId }),
    ],
    ["doks", () => new DoksStack(Testing.app(), "doks", { loaded: parseConfig({}), appDir, releaseId })],
    [
      "doks with a domain, a secret and egress",
      () => new DoksStack(Testing.app(), "doks", { loaded: parseConfig(everything), appDir, releaseId }),
    ],
    [
      "k8s (your own cluster)",
      () =>
        new K8sStack(Testing.app(), "k8s", {
          loaded: parseConfig({ image: "ghcr.io/acme/orders:1.4.2", kubernetes: { cluster: { context: "prod" } } }),
          appDir,
          releaseId,
        }),
    ],
  ])("%s: every object is valid", (_, make) => {
    const manifests = kubernetesManifests(resources(make()));
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    expect(schemaProblems(manifests)).toEqual([]);
  });

  it("catches what the schema forbids (the check can fail)", () => {
    const manifests = kubernetesManifests(resources(new DoksStack(Testing.app(), "doks", { loaded: parseConfig({}), appDir, releaseId })));
    // The objects are the API's shape (plural lists, camelCase), not the provider's.
    expect(manifests.find((m) => m.kind === "Deployment")).toMatchObject({
      apiVersion: "apps/v1",
      spec: {
        template: {
          spec: { containers: [{ ports: [{ name: "http" }, { name: "metrics" }], securityContext: { readOnlyRootFilesystem: true } }] },
        },
      },
    });
    expect(manifests.find((m) => m.kind === "Ingress")).toMatchObject({ spec: { rules: [{ http: { paths: [{ pathType: "Prefix" }] } }] } });
    expect(manifests.find((m) => m.kind === "HorizontalPodAutoscaler")).toMatchObject({
      spec: { behavior: { scaleDown: { policies: [{}] } } },
    });
    const deployment = manifests.find((m) => m.kind === "Deployment") as { spec: { replicas?: unknown } };
    deployment.spec.replicas = "two";
    const hpa = manifests.find((m) => m.kind === "HorizontalPodAutoscaler") as { spec: Record<string, unknown> };
    delete hpa.spec.maxReplicas;
    const problems = schemaProblems(manifests);
    expect(problems).toEqual([
      expect.stringContaining("Deployment hello-node: data/spec/replicas must be integer"),
      "HorizontalPodAutoscaler hello-node: data/spec must have required property maxReplicas",
    ]);
  });
});
