// `terraform init` + `terraform validate` with the real providers (built by `npm run providers`) on every stack of
// every configuration in the matrix, synthesized by the project's own entry point. Zero errors, zero warnings.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeDiagnostic, providerBuilt, type StackName, type Synthesized, synthesize, validate } from "../helpers/terraform";
import { MATRIX } from "./matrix";

jest.setTimeout(900_000);

/** The provider types a synthesized stack requires that are not built here (digitalocean: refused by the proxy). */
const missing = (synth: Synthesized, stack: StackName) => {
  const required = (synth.json(stack).terraform as { required_providers?: Record<string, unknown> }).required_providers ?? {};
  return Object.keys(required).filter((type) => !providerBuilt(type));
};

// Jest runs no hook of a describe whose tests are all skipped: every synthesis is removed here, at the file's end.
const synthesized: Synthesized[] = [];
afterAll(() => {
  for (const s of synthesized) s.remove();
});

describe.each(MATRIX)("$name", (entry) => {
  // Synthesized while the tests are collected: which providers each stack needs decides whether it can run here.
  const synth = synthesize(entry.config, entry.env);
  synthesized.push(synth);

  for (const stack of entry.stacks) {
    const lacking = missing(synth, stack);
    (lacking.length === 0 ? it : it.skip)(
      lacking.length === 0
        ? `${stack}: validates with no error and no warning`
        : `${stack}: not validated (no ${lacking.join(", ")} provider built)`,
      () => {
        expect(validate(synth.stackDir(stack)).map(describeDiagnostic)).toEqual([]);
      },
    );
  }
});

describe("the validation itself", () => {
  it("fails a stack the provider rejects, naming the resource and the argument", () => {
    if (!providerBuilt("kubernetes")) throw new Error("the kubernetes provider is not built: run `npm run providers`");
    const synth = synthesize({ image: "ghcr.io/acme/hello-node:1.4.2", kubernetes: { cluster: { context: "kind-nodescale" } } });
    try {
      const dir = synth.stackDir("k8s");
      const file = join(dir, "cdk.tf.json");
      const json = JSON.parse(readFileSync(file, "utf8")) as { resource: Record<string, Record<string, Record<string, unknown>>> };
      const [name, deployment] = Object.entries(json.resource.kubernetes_deployment_v1)[0];
      // A mistake the provider finds and a synth does not: an argument the resource does not have.
      deployment.replicas_wanted = 3;
      json.resource.kubernetes_deployment_v1[name] = deployment;
      writeFileSync(file, JSON.stringify(json));
      expect(validate(dir).map(describeDiagnostic)).toEqual([
        expect.stringMatching(
          /^error: Extraneous JSON object property \[resource\.kubernetes_deployment_v1\.\S+\] — No argument or block type is named "replicas_wanted"/,
        ),
      ]);
    } finally {
      synth.remove();
    }
  });
});
