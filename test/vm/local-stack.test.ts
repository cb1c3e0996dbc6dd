import { Testing } from "../../constructs/cdk";
import { parseConfig } from "../../stacks/config";
import { LocalStack } from "../../stacks/local";
import { fixtureBundle } from "../helpers/fixtures";

const bundle = fixtureBundle();

interface Synth {
  resource: { terraform_data: Record<string, { input: Record<string, string>; provisioner: { "local-exec": Record<string, unknown> }[] }> };
  output: Record<string, { value: unknown }>;
  terraform?: Record<string, unknown>;
}

function synthLocal(raw: unknown = {}, release = bundle) {
  const app = Testing.app();
  const stack = new LocalStack(app, "local", { loaded: parseConfig(raw), bundle: release, projectRoot: "/project", cores: 2 });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

function byPrefix(parsed: Synth, prefix: string) {
  const entry = Object.entries(parsed.resource.terraform_data).find(([key]) => key.startsWith(prefix));
  if (!entry) throw new Error(`no terraform_data named ${prefix}*`);
  return entry[1];
}

describe("local stack", () => {
  it("synthesizes only Terraform's built-in terraform_data: nothing to download", () => {
    const { json, parsed, stack } = synthLocal();
    expect(json).toMatchSnapshot();
    expect(Object.keys(parsed.resource)).toEqual(["terraform_data"]);
    expect(parsed.terraform?.required_providers).toBeUndefined();
    // terraform init + validate for real: works offline only because no provider is needed.
    expect(Testing.fullSynth(stack)).toBeValidTerraform();
  });

  it("outputs the loopback url and the process count", () => {
    const { parsed } = synthLocal({ local: { port: 9090 }, service: { workers: 3 } });
    expect(parsed.output.url.value).toBe("http://127.0.0.1:9090");
    expect(parsed.output.workers.value).toBe(3);
  });

  it("applies through the local-target script and tears down only its own deployment", () => {
    const { parsed, stack } = synthLocal();
    const deploy = byPrefix(parsed, "Target_Deploy");
    const [apply, destroy] = deploy.provisioner.map((p) => p["local-exec"]);
    expect(apply).toMatchObject({ command: "bash scripts/local-target.sh apply", working_dir: "/project" });
    expect(destroy).toMatchObject({ command: "bash scripts/local-target.sh destroy", when: "destroy" });
    expect(destroy.environment).toEqual({
      NODESCALE_DIR: "${self.input.dir}",
      NODESCALE_ROOT: "${self.input.root}",
      NODESCALE_DEPLOY_ID: "${self.input.deploy_id}",
    });
    expect(deploy.input).toEqual({ dir: "/project/.nodescale/local", root: "/project", deploy_id: stack.target.deployId });
    const files = apply.environment as Record<string, string>;
    expect(Buffer.from(files.NGINX_SITE_B64, "base64").toString()).toBe(stack.target.files.nginxSite);
    expect(stack.target.files.nginxSite).toContain("listen 127.0.0.1:8080;");
    expect(stack.target.files.nginxConf).toContain("pid /project/.nodescale/local/nginx/nginx.pid;");
    expect(stack.target.files.ecosystem).toContain('"cwd": "/project/app"');
  });

  it("ends with a health check that expects every configured worker and re-runs on new content", () => {
    const { parsed, stack } = synthLocal({ service: { workers: 2 } });
    const check = byPrefix(parsed, "Target_HealthCheck");
    const exec = check.provisioner[0]["local-exec"];
    expect(exec.command).toBe(
      'node dist/health/cli.js --url "$NODESCALE_URL" --timeout 60 --health-path /health --ready-path /ready --expect-workers 2 --expect-release "$NODESCALE_RELEASE"',
    );
    expect(exec.environment).toEqual({ NODESCALE_URL: "http://127.0.0.1:8080", NODESCALE_RELEASE: bundle.sha256 });
    expect((check as unknown as { triggers_replace: Record<string, string> }).triggers_replace.deploy_id).toBe(stack.target.deployId);
    expect((check as unknown as { depends_on: string[] }).depends_on).toEqual([expect.stringMatching(/^terraform_data\.Target_Deploy_/)]);
  });

  it("runs the app's release and redeploys (a rolling reload) when only the app code changed", () => {
    const { stack } = synthLocal();
    expect(stack.target.files.ecosystem).toContain(`"NODESCALE_RELEASE": "${bundle.sha256}"`);
    const newer = { ...bundle, sha256: "f".repeat(64) };
    expect(synthLocal({}, newer).stack.target.deployId).not.toBe(stack.target.deployId);
  });

  it("changes the deployment id, and so redeploys, when the rendered content changes", () => {
    expect(synthLocal({ service: { workers: 2 } }).stack.target.deployId).not.toBe(
      synthLocal({ service: { workers: 3 } }).stack.target.deployId,
    );
    expect(synthLocal().stack.target.deployId).toBe(synthLocal().stack.target.deployId);
  });
});
