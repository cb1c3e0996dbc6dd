import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { Resources } from "./synth";

/** Each Terraform resource type the stacks synthesize, and the Kubernetes object it stands for. */
const KINDS: Readonly<Record<string, { apiVersion: string; kind: string }>> = {
  kubernetes_namespace_v1: { apiVersion: "v1", kind: "Namespace" },
  kubernetes_config_map_v1: { apiVersion: "v1", kind: "ConfigMap" },
  kubernetes_secret_v1: { apiVersion: "v1", kind: "Secret" },
  kubernetes_service_v1: { apiVersion: "v1", kind: "Service" },
  kubernetes_deployment_v1: { apiVersion: "apps/v1", kind: "Deployment" },
  kubernetes_ingress_v1: { apiVersion: "networking.k8s.io/v1", kind: "Ingress" },
  kubernetes_network_policy_v1: { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
  kubernetes_horizontal_pod_autoscaler_v2: { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler" },
  kubernetes_pod_disruption_budget_v1: { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
};

/** Terraform's meta-arguments and the provider's own settings: not part of the object. */
const PROVIDER_ONLY = new Set([
  "depends_on",
  "lifecycle",
  "provider",
  "count",
  "for_each",
  "timeouts",
  "wait_for_rollout",
  "wait_for_load_balancer",
]);
/** Maps whose keys are data (label keys, file names, variable names): kept as they are. */
const MAPS = new Set(["labels", "annotations", "match_labels", "data", "binary_data", "node_selector", "limits", "requests"]);
/** The provider names a repeated block in the singular; the API's field is the plural. */
const PLURAL: Readonly<Record<string, string>> = {
  container: "containers",
  init_container: "initContainers",
  port: "ports",
  volume: "volumes",
  volume_mount: "volumeMounts",
  env_from: "envFrom",
  toleration: "tolerations",
  topology_spread_constraint: "topologySpreadConstraints",
  rule: "rules",
  path: "paths",
  metric: "metrics",
  policy: "policies",
  match_expressions: "matchExpressions",
  image_pull_secrets: "imagePullSecrets",
};
/** Blocks the provider takes as one-element lists where the API has one object. */
const SINGLE = new Set(["scale_down", "scale_up", "label_selector", "seccomp_profile"]);

/** Numbers the provider takes as strings (IDs in decimal, file modes in octal, as `chmod` writes them). */
const DECIMAL = new Set(["run_as_user", "run_as_group", "fs_group"]);
const OCTAL = new Set(["default_mode", "mode"]);

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function convert(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => convert(v));
    return SINGLE.has(key) && items.length === 1 ? items[0] : items;
  }
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (PROVIDER_ONLY.has(k)) continue;
    if (MAPS.has(k)) {
      out[camel(k)] = v;
      continue;
    }
    // A Service's selector is a map of labels; elsewhere selectors are LabelSelector objects.
    if (k === "selector" && v !== null && typeof v === "object" && !("match_labels" in v) && !("match_expressions" in v)) {
      out[k] = v;
      continue;
    }
    if (typeof v === "string" && DECIMAL.has(k)) {
      out[camel(k)] = Number.parseInt(v, 10);
      continue;
    }
    if (typeof v === "string" && OCTAL.has(k)) {
      out[camel(k)] = Number.parseInt(v, 8);
      continue;
    }
    const name = Array.isArray(v) && PLURAL[k] !== undefined ? PLURAL[k] : camel(k);
    out[name] = convert(v, k);
  }
  return out;
}

/** The Kubernetes objects (manifests) that a stack's `kubernetes_*` resources stand for. */
export function kubernetesManifests(resources: Resources): Record<string, unknown>[] {
  const manifests: Record<string, unknown>[] = [];
  for (const [type, byName] of Object.entries(resources)) {
    if (!type.startsWith("kubernetes_")) continue;
    const target = KINDS[type];
    if (target === undefined) throw new Error(`no Kubernetes kind known for ${type}: add it to KINDS`);
    for (const resource of Object.values(byName)) {
      const manifest: Record<string, unknown> = { ...target, ...(convert(resource) as Record<string, unknown>) };
      // The provider base64-encodes a Secret's `data` itself; in the API that is `stringData`.
      if (target.kind === "Secret" && "data" in manifest) {
        manifest.stringData = manifest.data;
        delete manifest.data;
      }
      manifests.push(manifest);
    }
  }
  return manifests;
}

/** Problems kubernetes-models finds in these manifests against the Kubernetes OpenAPI schema ([] when valid). */
export function schemaProblems(manifests: readonly Record<string, unknown>[]): string[] {
  const run = spawnSync(process.execPath, [join(__dirname, "validate-k8s.mjs")], { input: JSON.stringify(manifests), encoding: "utf8" });
  if (run.status !== 0) throw new Error(`validate-k8s.mjs failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
}
