// The checkers our users' security teams run, on what we synthesize: Checkov (PyPI, pinned) on every stack of the
// matrix, kube-score (Go module proxy, pinned) on every Kubernetes object. A finding fails the test unless it is
// suppressed in checkov-suppressions.ts (by check ID and resource, with the reason) or, for kube-score, by the
// `kube-score/ignore` annotation on the object itself. Both lists are in docs/terraform.md.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubernetesManifests } from "../helpers/k8s-manifests";
import type { Resources } from "../helpers/synth";
import { type StackName, type Synthesized, synthesize, TOOLS_DIR } from "../helpers/terraform";
import { CHECKOV_SUPPRESSIONS } from "./checkov-suppressions";
import { MATRIX } from "./matrix";

jest.setTimeout(900_000);

const CHECKOV = join(TOOLS_DIR, "checkov", "bin", "checkov");
const KUBE_SCORE = join(TOOLS_DIR, "bin", "kube-score");
const CLOUD_STACKS: readonly StackName[] = ["vm-pm2", "vm-pm2-do", "eks", "doks", "k8s"];

/** A resource's name without the hash cdktf appends to construct paths (Host_Releases_Bucket_97C171B2 → Host_Releases_Bucket). */
const constructName = (name: string) => name.replace(/_[0-9A-F]{8}$/, "");

interface CheckovFailure {
  check_id: string;
  resource: string;
  file_path: string;
  check_name: string;
}

/**
 * Checkov's findings for some synthesized stacks, as "stack: CHECK_ID resource-type.construct (what it checks)".
 * Checkov 3.3.30's terraform_json parser fails on the `terraform` block cdktf writes (its `required_version` string),
 * so each stack is scanned as a copy without that block (versions and backend: nothing Checkov checks).
 */
function checkov(synth: Synthesized, stacks: readonly StackName[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "nodescale-checkov-"));
  try {
    for (const stack of stacks) {
      const { terraform: _versions, ...rest } = synth.json(stack);
      mkdirSync(join(dir, stack));
      writeFileSync(join(dir, stack, "cdk.tf.json"), JSON.stringify(rest));
    }
    const run = spawnSync(CHECKOV, ["-d", dir, "--framework", "terraform_json", "-o", "json", "--compact", "--quiet", "--skip-download"], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, BC_SKIP_MAPPING: "TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: "false" },
    });
    if (run.error) throw new Error(`checkov: ${run.error.message} (run scripts/terraform-tools.sh)`);
    const parsed = JSON.parse(run.stdout) as
      | { summary: { parsing_errors: number }; results: { failed_checks: CheckovFailure[] } }
      | { passed: number; parsing_errors: number };
    if (!("results" in parsed)) throw new Error(`checkov scanned nothing: ${run.stdout}\n${run.stderr.slice(-3000)}`);
    if (parsed.summary.parsing_errors > 0) throw new Error(`checkov could not parse a stack:\n${run.stderr.slice(-3000)}`);
    return parsed.results.failed_checks.map((f) => {
      const stack = f.file_path.split("/").filter(Boolean)[0];
      const [kind, name] = f.resource.split(".");
      return `${stack}: ${f.check_id} ${kind}.${constructName(name)} (${f.check_name})`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const suppressed = (finding: string) =>
  CHECKOV_SUPPRESSIONS.some((s) => {
    const m = /^(\S+): (\S+) (\S+) /.exec(finding);
    return m !== null && s.id === m[2] && s.resource.test(m[3]) && (s.stacks === undefined || s.stacks.includes(m[1] as StackName));
  });

/**
 * A stack's Kubernetes objects as the cluster gets them, where Terraform fills values in at apply: a reference to
 * another object's name becomes that name, and an image the apply builds and pushes (its digest is known only then)
 * a digest reference.
 */
function clusterObjects(resources: Resources): Record<string, unknown>[] {
  let text = JSON.stringify(resources);
  for (const [type, byName] of Object.entries(resources)) {
    if (!type.startsWith("kubernetes_")) continue;
    for (const [name, resource] of Object.entries(byName)) {
      const objectName = (resource.metadata as { name?: string } | undefined)?.name;
      if (objectName !== undefined) text = text.replaceAll(`\${${type}.${name}.metadata[0].name}`, objectName);
    }
  }
  text = text.replace(/"image":"[^"]*\$\{[^"]*"/g, `"image":"registry.example/hello-node@sha256:${"0".repeat(64)}"`);
  return kubernetesManifests(JSON.parse(text) as Resources);
}

/** kube-score's findings (grade below OK) for these objects, as "Kind/name: check — comment". */
function kubeScore(manifests: readonly Record<string, unknown>[]): string[] {
  if (manifests.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), "nodescale-kube-score-"));
  try {
    const file = join(dir, "objects.yaml");
    writeFileSync(file, manifests.map((m) => JSON.stringify(m)).join("\n---\n"));
    const run = spawnSync(KUBE_SCORE, ["score", "--output-format", "json", file], { encoding: "utf8" });
    if (run.error) throw new Error(`kube-score: ${run.error.message} (run scripts/terraform-tools.sh)`);
    const objects = JSON.parse(run.stdout) as {
      object_name: string;
      type_meta: { kind: string };
      checks: { check: { id: string }; grade: number; skipped: boolean; comments: { summary: string }[] | null }[];
    }[];
    return objects.flatMap((o) =>
      o.checks
        .filter((c) => !c.skipped && c.grade < 10)
        .map(
          (c) =>
            `${o.type_meta.kind}/${o.object_name.split("/").pop()}: ${c.check.id} — ${(c.comments ?? []).map((x) => x.summary).join("; ")}`,
        ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(MATRIX)("$name", (entry) => {
  const stacks = entry.stacks.filter((s) => CLOUD_STACKS.includes(s));
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize(entry.config, entry.env);
  });
  afterAll(() => synth?.remove());

  it("Checkov finds nothing unsuppressed", () => {
    expect(checkov(synth, stacks).filter((f) => !suppressed(f))).toEqual([]);
  });

  it("kube-score finds nothing unsuppressed in the Kubernetes objects", () => {
    const objects = stacks.flatMap((s) => clusterObjects((synth.json(s).resource ?? {}) as Resources));
    expect(kubeScore(objects)).toEqual([]);
  });
});

describe("the checkers themselves", () => {
  it("report a finding in a stack that has one", () => {
    const synth = synthesize({});
    try {
      const json = synth.json("vm-pm2") as { resource: Record<string, Record<string, Record<string, unknown>>> };
      const [name, instance] = Object.entries(json.resource.aws_instance)[0];
      // IMDSv1 allowed: the finding Checkov has for it (CKV_AWS_79).
      instance.metadata_options = { http_endpoint: "enabled", http_tokens: "optional" };
      writeFileSync(join(synth.stackDir("vm-pm2"), "cdk.tf.json"), JSON.stringify(json));
      expect(checkov(synth, ["vm-pm2"])).toContain(
        `vm-pm2: CKV_AWS_79 resource.${constructName(name)} (Ensure Instance Metadata Service Version 1 is not enabled)`,
      );
      const objects = clusterObjects((synth.json("eks").resource ?? {}) as Resources);
      const deployment = objects.find((o) => o.kind === "Deployment") as {
        spec: { template: { spec: { containers: { image: string }[] } } };
      };
      deployment.spec.template.spec.containers[0].image = "node:latest";
      expect(kubeScore(objects)).toEqual(expect.arrayContaining([expect.stringMatching(/^Deployment\/\S+: container-image-tag — /)]));
    } finally {
      synth.remove();
    }
  });
});
