import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Testing } from "../../constructs/cdk";
import { parseConfig } from "../../stacks/config";
import { forgetOtherLocalBackend, LocalStack } from "../../stacks/local";
import { fixtureBundle } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

const bundle = fixtureBundle();

interface DataResource {
  input: Record<string, string>;
  triggers_replace: Record<string, string>;
  depends_on?: string[];
  provisioner: { "local-exec": { command: string; working_dir: string; when?: string; environment: Record<string, string> } }[];
}
interface Synth {
  resource: { terraform_data: Record<string, DataResource> };
  output: Record<string, { value: unknown }>;
  terraform?: Record<string, unknown>;
}

function synthLocal(raw: unknown = {}) {
  const app = Testing.app();
  const stack = new LocalStack(app, "local", { loaded: parseConfig(raw), bundle, projectRoot: "/project", cores: 2 });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

function byPrefix(parsed: Synth, prefix: string): DataResource {
  const entry = Object.entries(parsed.resource.terraform_data).find(([key]) => key.startsWith(prefix));
  if (!entry) throw new Error(`no terraform_data named ${prefix}*`);
  return entry[1];
}

describe("local stack", () => {
  it("synthesizes only Terraform's built-in terraform_data: nothing to download", () => {
    const { json, parsed, stack } = synthLocal();
    // The deployment blob holds every rendered file and this machine's paths: decoded and asserted below.
    expect(json.replace(/"NODESCALE_DEPLOYMENT_B64": "[^"]*"/, '"NODESCALE_DEPLOYMENT_B64": "<asserted decoded>"')).toMatchSnapshot();
    expect(Object.keys(parsed.resource)).toEqual(["terraform_data"]);
    expect(parsed.terraform?.required_providers).toBeUndefined();
    // terraform init + validate for real: works offline only because no provider is needed.
    expect(Testing.fullSynth(stack)).toBeValidTerraform();
  });

  it("outputs the loopback url, the processes per machine and the machines", () => {
    const { parsed } = synthLocal({ local: { port: 9090, machines: 3 }, service: { workers: 3 } });
    expect(parsed.output.url.value).toBe("http://127.0.0.1:9090");
    expect(parsed.output.workers.value).toBe(3);
    expect(parsed.output.machines.value).toBe(3);
  });

  it("converges on every apply, not only when the content changed, and stops everything on destroy", () => {
    const { parsed } = synthLocal();
    const deploy = byPrefix(parsed, "Target_Deploy");
    const [apply, destroy] = deploy.provisioner.map((p) => p["local-exec"]);
    expect(deploy.triggers_replace).toEqual({ run: "${timestamp()}" });
    expect(deploy.input).toEqual({ dir: "/project/.nodescale/local", run: "${timestamp()}" });
    expect(apply).toMatchObject({ command: 'node "$NODESCALE_RUNNER" apply', working_dir: "/project" });
    // NodeScale's own runner, found from the package (not from the project or the shell's folder), and built.
    expect(apply.environment.NODESCALE_RUNNER).toBe(join(ROOT, "dist", "constructs", "vm", "local-runner.js"));
    expect(existsSync(apply.environment.NODESCALE_RUNNER)).toBe(true);
    expect(apply.environment.NODESCALE_RELEASE).toBe(bundle.sha256);
    expect(apply.environment.NODESCALE_BUNDLE).toMatch(
      /^\$\{abspath\("assets\/Target_Bundle_[0-9A-F]+\/[0-9A-F]+\/[0-9a-f]{64}\.tar\.gz"\)\}$/,
    );
    expect(destroy).toMatchObject({ command: 'node "$NODESCALE_RUNNER" destroy', when: "destroy" });
    expect(destroy.environment).toEqual({
      NODESCALE_DIR: "${self.input.dir}",
      NODESCALE_RUN_ID: "${self.input.run}",
      NODESCALE_RUNNER: apply.environment.NODESCALE_RUNNER,
    });
  });

  it("ships one machine on 127.0.0.1 without a load balancer by default", () => {
    const { stack, parsed } = synthLocal({ service: { workers: 2 } });
    const deployment = stack.target.deployment;
    const fromEnv = JSON.parse(
      Buffer.from(byPrefix(parsed, "Target_Deploy").provisioner[0]["local-exec"].environment.NODESCALE_DEPLOYMENT_B64, "base64").toString(),
    );
    expect(fromEnv).toEqual(JSON.parse(JSON.stringify(deployment)));
    expect(deployment.loadBalancer).toBeUndefined();
    expect(deployment.machines.map((m) => [m.name, m.address, m.plan.host, m.plan.clientFacing])).toEqual([
      ["m1", "127.0.0.1:8080", "127.0.0.1", true],
    ]);
    const [conf, site] = deployment.machines[0].plan.files;
    expect(conf.content).toContain("pid /project/.nodescale/local/machines/m1/nginx/nginx.pid;");
    expect(site.content).toContain("listen 127.0.0.1:8080;");
    expect(deployment.machines[0].plan.apps[0]).toMatchObject({ cwd: "/project/.nodescale/local/machines/m1/current", instances: 2 });
    expect(deployment.machines[0].plan.pm2).toEqual({
      home: "/project/.nodescale/local/machines/m1/pm2",
      // The PM2 NodeScale depends on, wherever npm installed it: not assumed to sit in the project.
      bin: join(ROOT, "node_modules", "pm2", "bin", "pm2"),
    });
  });

  it("puts several machines on their own loopback addresses behind a load balancer on local.port", () => {
    const { stack } = synthLocal({ local: { machines: 2, port: 8181 } });
    const deployment = stack.target.deployment;
    expect(deployment.machines.map((m) => [m.name, m.address, m.plan.clientFacing, m.plan.apps[0].env])).toEqual([
      ["m1", "127.0.1.1:8181", false, expect.objectContaining({ HOST: "127.0.1.1", NODESCALE_MACHINE: "m1" })],
      ["m2", "127.0.1.2:8181", false, expect.objectContaining({ HOST: "127.0.1.2", NODESCALE_MACHINE: "m2" })],
    ]);
    expect(deployment.loadBalancer?.nginx).toMatchObject({
      listen: "127.0.0.1:8181",
      upstreamFile: "/project/.nodescale/local/load-balancer/machines.conf",
    });
    expect(deployment.loadBalancer?.drainSeconds).toBe(15);
    expect(deployment.loadBalancer?.files[1].content).toContain("listen 127.0.0.1:8181;");
  });

  it("ends with a health check on every apply: every worker on one machine, every machine behind the balancer", () => {
    const one = byPrefix(synthLocal({ service: { workers: 2 } }).parsed, "Target_HealthCheck");
    const exec = one.provisioner[0]["local-exec"];
    expect(exec.command).toBe(
      'node "$NODESCALE_HEALTH_CLI" --url "$NODESCALE_URL" --timeout 60 --health-path /health --ready-path /ready --expect-workers 2 --expect-release "$NODESCALE_RELEASE"',
    );
    expect(exec.environment).toEqual({
      NODESCALE_HEALTH_CLI: join(ROOT, "dist", "health", "cli.js"),
      NODESCALE_URL: "http://127.0.0.1:8080",
      NODESCALE_RELEASE: bundle.sha256,
    });
    expect(one.triggers_replace.apply).toBe("${timestamp()}");
    expect(one.depends_on).toEqual([expect.stringMatching(/^terraform_data\.Target_Deploy_/)]);
    const two = byPrefix(synthLocal({ local: { machines: 2 } }).parsed, "Target_HealthCheck").provisioner[0]["local-exec"];
    expect(two.command).toContain("--expect-machines 2 --expect-release");
    expect(two.command).not.toContain("--expect-workers");
  });

  it("carries env: secret references to the apply step, never their values", () => {
    process.env.NODESCALE_TEST_LOCAL_SECRET = "local-secret-value-3e1a";
    try {
      const { stack, json, parsed } = synthLocal({ service: { secrets: { API_TOKEN: "env:NODESCALE_TEST_LOCAL_SECRET" } } });
      expect(json).not.toContain("local-secret-value-3e1a");
      expect(stack.target.deployment.secrets).toEqual({ API_TOKEN: { kind: "env", variable: "NODESCALE_TEST_LOCAL_SECRET" } });
      expect(stack.target.deployment.machines[0].plan).toMatchObject({
        secretNames: ["API_TOKEN"],
        secretsFile: "/project/.nodescale/local/machines/m1/secrets.json",
      });
      expect(byPrefix(parsed, "Target_Deploy")).not.toHaveProperty("lifecycle.precondition");
    } finally {
      delete process.env.NODESCALE_TEST_LOCAL_SECRET;
    }
  });

  it("stops the plan, naming them, for a variable the shell lacks and for references only a cloud role can read", () => {
    const { parsed } = synthLocal({ service: { secrets: { API_TOKEN: "env:NODESCALE_TEST_UNSET", DB: "ssm:/orders/db" } } });
    const deploy = byPrefix(parsed, "Target_Deploy") as unknown as { lifecycle: { precondition: { error_message: string }[] } };
    expect(deploy.lifecycle.precondition.map((p) => p.error_message)).toEqual([
      "the local stack reads secrets from the deploying shell only (env:NAME); service.secrets.DB is ssm:/orders/db",
      "not set in the shell that deploys: service.secrets.API_TOKEN (env:NODESCALE_TEST_UNSET)",
    ]);
  });

  it("refuses more simulated machines than it has loopback addresses for", () => {
    expect(() => synthLocal({ local: { machines: 17 } })).toThrow(/local\.machines: 17 is not allowed: must be a whole number 1-16/);
  });
});

describe("the local state", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const stackDir = (cached?: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), "nodescale-stackdir-"));
    dirs.push(dir);
    if (cached !== undefined) {
      mkdirSync(join(dir, ".terraform"));
      writeFileSync(join(dir, ".terraform", "terraform.tfstate"), JSON.stringify(cached));
    }
    return dir;
  };

  it("forgets Terraform's cached backend when it names another instance's (or a moved checkout's) state file", () => {
    const dir = stackDir({ backend: { type: "local", config: { path: "/old/place/.nodescale/local.tfstate" } } });
    expect(forgetOtherLocalBackend(dir, "/new/place/.nodescale/local.tfstate")).toBe(true);
    expect(existsSync(join(dir, ".terraform", "terraform.tfstate"))).toBe(false);
  });

  it("keeps the cache when it already names this state file, and when there is none", () => {
    const cached = { backend: { type: "local", config: { path: "/p/.nodescale/e2e-1.tfstate" } } };
    const dir = stackDir(cached);
    expect(forgetOtherLocalBackend(dir, "/p/.nodescale/e2e-1.tfstate")).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, ".terraform", "terraform.tfstate"), "utf8"))).toEqual(cached);
    expect(forgetOtherLocalBackend(stackDir(), "/p/x.tfstate")).toBe(false);
  });
});
