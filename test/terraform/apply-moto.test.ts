// vm-pm2 applied for real by Terraform and the AWS provider against moto (the AWS stand-in; see docs/terraform.md
// for what it does not implement), one machine and a group: apply, a clean plan after it, a day-two change, a
// clean destroy. The health check runs the product's command against a stand-in server started from the release
// the apply uploaded to moto's S3 (standin-health.mjs).

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { init, providerBuilt, type Run, type Synthesized, synthesize, terraform, writeOverride } from "../helpers/terraform";
import { type Moto, motoOverride, startMoto } from "./moto";

jest.setTimeout(1_800_000);

/** Without the aws provider (npm run providers builds it; .ci/run does not yet, see docs/terraform.md) nothing runs. */
const AWS = providerBuilt("aws");
let moto: Moto;
beforeAll(async () => {
  if (AWS) moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

function ok(run: Run, what: string): Run {
  if (run.status !== 0) throw new Error(`${what} failed (exit ${run.status}):\n${run.stdout.slice(-6000)}\n${run.stderr.slice(-6000)}`);
  return run;
}

/** The addresses a saved plan would change, with their actions ("no-op" and "read" left out). */
function plannedChanges(dir: string): string[] {
  ok(terraform(dir, ["plan", "-input=false", "-no-color", "-out=tfplan"]), "terraform plan");
  const show = ok(terraform(dir, ["show", "-json", "tfplan"]), "terraform show");
  const plan = JSON.parse(show.stdout) as { resource_changes?: { address: string; change: { actions: string[] } }[] };
  return (plan.resource_changes ?? [])
    .filter((c) => !c.change.actions.every((a) => a === "no-op" || a === "read"))
    .map((c) => `${c.address}: ${c.change.actions.join(",")}`)
    .sort();
}

/** Synthesizes `config`, points it at moto with the state in `stateDir`, and runs init. */
function prepare(config: unknown, stateDir: string): Synthesized {
  const synth = synthesize(config);
  const dir = synth.stackDir("vm-pm2");
  writeOverride(dir, "moto", motoOverride(synth.json("vm-pm2"), moto.url, join(stateDir, "terraform.tfstate")));
  ok(init(dir), "terraform init");
  return synth;
}

const APPLY = ["apply", "-auto-approve", "-input=false", "-no-color"];

describe.each([
  {
    topology: "one machine",
    config: { service: { workers: 2 } },
    dayTwo: { service: { workers: 3 } },
  },
  {
    topology: "a group of 2 behind a load balancer",
    config: { service: { workers: 2 }, vm: { machines: 2 } },
    dayTwo: { service: { workers: 2 }, vm: { machines: 3 } },
  },
])("vm-pm2 on moto, $topology", ({ config, dayTwo }) => {
  let stateDir = "";
  const synths: Synthesized[] = [];
  afterAll(() => {
    for (const s of synths) s.remove();
    if (stateDir !== "") rmSync(stateDir, { recursive: true, force: true });
  });

  (AWS ? it : it.skip)(
    `${AWS ? "" : "not applied (no aws provider built): "}applies, plans clean after the apply, takes a day-two change, and destroys leaving nothing in moto`,
    () => {
      stateDir = mkdtempSync(join(tmpdir(), "nodescale-tfstate-"));
      const first = prepare(config, stateDir);
      synths.push(first);
      const dir = first.stackDir("vm-pm2");
      const applied = ok(terraform(dir, APPLY), "terraform apply");
      // The health check ran, against the release read back from moto's S3 (the stand-in says so).
      expect(applied.stdout).toMatch(/stand-in: the release [0-9a-f]{64} read back from moto's S3 answered the health check with exit 0/);

      // After an apply only the health check is planned: it runs on every apply by design (triggers_replace holds
      // timestamp()). Anything else would be a perpetual diff.
      expect(plannedChanges(dir)).toEqual([expect.stringMatching(/^terraform_data\.HealthCheck_Run_\w+: delete,create$/)]);

      // Day two: the same state, a new synthesis with the change.
      const second = prepare(dayTwo, stateDir);
      synths.push(second);
      const dir2 = second.stackDir("vm-pm2");
      // The change plans more than the health check.
      expect(plannedChanges(dir2).filter((c) => !c.startsWith("terraform_data.HealthCheck_Run_"))).not.toEqual([]);
      ok(terraform(dir2, APPLY), "terraform apply (day two)");
      expect(plannedChanges(dir2)).toEqual([expect.stringMatching(/^terraform_data\.HealthCheck_Run_\w+: delete,create$/)]);

      ok(terraform(dir2, ["destroy", "-auto-approve", "-input=false", "-no-color"]), "terraform destroy");
      expect(ok(terraform(dir2, ["state", "list"]), "terraform state list").stdout).toBe("");
      expect(moto.leftovers()).toEqual({});
      expect(readFileSync(join(stateDir, "terraform.tfstate"), "utf8")).toContain('"resources": []');
    },
  );
});
