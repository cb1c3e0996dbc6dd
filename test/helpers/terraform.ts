// Running the real Terraform, with the providers `npm run providers` built, on stacks the project's own synth wrote.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(__dirname, "..", "..");
/** Where `npm run providers` and `scripts/terraform-tools.sh` install (NODESCALE_TERRAFORM_DIR overrides it). */
export const TOOLS_DIR = process.env.NODESCALE_TERRAFORM_DIR ?? join(ROOT, ".nodescale", "terraform");
/** The Terraform CLI configuration `npm run providers` writes (dev_overrides for the providers it built). */
export const CLI_CONFIG = join(TOOLS_DIR, "terraform.rc");

/** Is this provider (its type: aws, kubernetes, helm, docker, digitalocean) built and named in the CLI config? */
export function providerBuilt(type: string): boolean {
  return existsSync(join(TOOLS_DIR, "providers", type, `terraform-provider-${type}`)) && existsSync(CLI_CONFIG);
}

/** Every stack main.ts registers. */
export type StackName = "local" | "vm-pm2" | "vm-pm2-do" | "eks" | "doks" | "k8s";

/** One synthesis of every stack for a config, as `cdktf synth` writes it (main.ts, run with NODESCALE_CONFIG). */
export interface Synthesized {
  readonly outdir: string;
  /** The folder Terraform runs in for a stack. */
  stackDir(name: StackName): string;
  /** The stack's cdk.tf.json, parsed. */
  json(name: StackName): Record<string, unknown>;
  /** Removes the output folder. */
  remove(): void;
}

/**
 * Synthesizes every stack with `config` as nodescale.config.json, through the project's own entry point (dist/main.js,
 * as `cdktf synth` runs it). `env` is the deploying shell's environment beyond this process's (`env:` secrets).
 */
export function synthesize(config: unknown, env: Record<string, string> = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), "nodescale-tf-"));
  const configFile = join(outdir, "nodescale.config.json");
  // Without service.source the app is the project's sample app (app/), as for a user's `cdktf synth` here.
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const run = spawnSync(process.execPath, [join(ROOT, "dist", "main.js")], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env, NODESCALE_CONFIG: configFile, CDKTF_OUTDIR: join(outdir, "cdktf.out"), CHECKPOINT_DISABLE: "1" },
  });
  if (run.status !== 0) {
    rmSync(outdir, { recursive: true, force: true });
    throw new Error(`synth failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
  }
  const stackDir = (name: StackName) => join(outdir, "cdktf.out", "stacks", name);
  return {
    outdir,
    stackDir,
    json: (name) => JSON.parse(readFileSync(join(stackDir(name), "cdk.tf.json"), "utf8")) as Record<string, unknown>,
    remove: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs terraform in `dir` with the providers' CLI config; no prompts, no colour, no update check. */
export function terraform(dir: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Run {
  if (!existsSync(CLI_CONFIG)) throw new Error(`${CLI_CONFIG} is missing: run \`npm run providers\` first`);
  const run = spawnSync("terraform", args, {
    cwd: dir,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      TF_CLI_CONFIG_FILE: CLI_CONFIG,
      TF_IN_AUTOMATION: "1",
      TF_INPUT: "0",
      CHECKPOINT_DISABLE: "1",
      NO_COLOR: "1",
      ...env,
    },
  });
  if (run.error) throw new Error(`terraform ${args.join(" ")}: ${run.error.message}`);
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

export interface Diagnostic {
  readonly severity: "error" | "warning";
  readonly summary: string;
  readonly detail?: string;
  readonly address?: string;
}

/** A diagnostic as one line a failing test can print: severity, summary, where and why. */
export function describeDiagnostic(d: Diagnostic): string {
  return `${d.severity}: ${d.summary}${d.address ? ` [${d.address}]` : ""}${d.detail ? ` — ${d.detail.replace(/\s+/g, " ").slice(0, 400)}` : ""}`;
}

/**
 * `terraform init`. With the providers installed as dev_overrides (the releases our bindings name cannot be had here:
 * docs/terraform.md), init initializes the backend and then fails to find those providers in any installation source
 * ("Failed to query available provider packages"); Terraform itself says init is not needed for them. That one
 * error is accepted; any other fails.
 */
export function init(dir: string, args: string[] = []): Run {
  const run = terraform(dir, ["init", "-input=false", "-no-color", ...args]);
  if (run.status === 0) return run;
  const text = `${run.stdout}\n${run.stderr}`;
  const errors = [...text.matchAll(/^Error: (.+)$/gm)].map((m) => m[1].trim());
  // Terraform wraps its messages at 80 columns.
  const missing = [...text.replace(/\s+/g, " ").matchAll(/provider registry\.terraform\.io\/(\S+) was not found/g)].map((m) => m[1]);
  const overridden = readFileSync(CLI_CONFIG, "utf8");
  const expected =
    errors.length > 0 &&
    errors.length === missing.length &&
    errors.every((e) => e === "Failed to query available provider packages") &&
    missing.every((address) => overridden.includes(`"${address}" = `));
  return expected ? { ...run, status: 0 } : run;
}

/**
 * Warnings no change to what we synthesize can remove, each with the reason (docs/terraform.md lists them):
 * - "Provider development overrides are in effect": the providers are dev_overrides builds, not the releases our
 *   bindings name, because the module proxy refuses those releases' commits.
 */
export const UNFIXABLE_WARNINGS = ["Provider development overrides are in effect"];

/**
 * `terraform init -backend=false` then `terraform validate -json` in a stack's folder (the backend is not contacted:
 * validation needs no state). Returns validate's diagnostics but the unfixable warnings, or init's failure as one error.
 */
export function validate(dir: string): Diagnostic[] {
  const initialized = init(dir, ["-backend=false"]);
  if (initialized.status !== 0) {
    return [{ severity: "error", summary: "terraform init failed", detail: `${initialized.stdout}${initialized.stderr}` }];
  }
  const run = terraform(dir, ["validate", "-json", "-no-color"]);
  const report = JSON.parse(run.stdout) as {
    diagnostics: { severity: "error" | "warning"; summary: string; detail?: string; snippet?: { context?: string } }[];
  };
  return report.diagnostics
    .filter((d) => !(d.severity === "warning" && UNFIXABLE_WARNINGS.includes(d.summary)))
    .map(({ severity, summary, detail, snippet }) => ({ severity, summary, detail, address: snippet?.context }));
}

/** Writes a Terraform override file beside a synthesized stack (the stack's own cdk.tf.json stays as users get it). */
export function writeOverride(dir: string, name: string, body: unknown): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}_override.tf.json`), JSON.stringify(body, null, 2));
}
