import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

// Packs NodeScale as npm would publish it, installs the tarball into a separate cdktf project (a copy of
// examples/consumer, outside this checkout so nothing resolves from its node_modules), type-checks that
// project against the package's declarations and synthesizes it.
jest.setTimeout(240_000);

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8" });

/** The parts of the synthesized JSON these tests read. */
interface TfDeployment {
  spec: {
    replicas?: number;
    template: {
      spec: {
        container: { image: string; command: string[] }[];
        priority_class_name?: string;
        termination_grace_period_seconds: number;
      };
    };
  };
}
interface TfData {
  provisioner: { "local-exec": { environment: Record<string, string>; command: string } }[];
}

let packDir: string;
let tarball: string;
let packed: string[];
let consumer: string;

beforeAll(() => {
  packDir = tempDir("nodescale-pack-");
  // npm test has just built dist/; --ignore-scripts skips the prepare step's second build.
  const [info] = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", packDir], ROOT)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(packDir, info.filename);
  packed = info.files.map((f) => f.path);
  consumer = join(tempDir("nodescale-consumer-"), "consumer");
  cpSync(join(ROOT, "examples", "consumer"), consumer, { recursive: true, filter: (src) => !/node_modules|dist|cdktf\.out/.test(src) });
  npm(["install", "--prefer-offline", tarball], consumer);
});

describe("NodeScale as a package", () => {
  it("packs the compiled library, its declarations, templates and CLIs, and no tests or sources", () => {
    for (const file of [
      "package.json",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/constructs/k8s/node-workload.d.ts",
      "dist/constructs/vm/local-runner.js",
      "dist/health/cli.js",
      "dist/cli/nodescale.js",
      "templates/nginx/site.conf",
      "templates/vm/machine-agent.js",
      "templates/docker/Dockerfile",
      "nodescale.schema.json",
    ]) {
      expect(packed).toContain(file);
    }
    expect(
      packed.filter((f) => /(^|\/)test\/|\.test\.|^bench\/|^dist\/bench\/|^app\/|^examples\/|\.ts$/.test(f) && !f.endsWith(".d.ts")),
    ).toEqual([]);
  });

  it("a separate cdktf project installs it, type-checks against it and synthesizes its own stack", () => {
    const installed = join(consumer, "node_modules", "nodescale");
    expect(existsSync(join(installed, "dist", "index.d.ts"))).toBe(true);
    const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", consumer], { encoding: "utf8" });
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);

    const outdir = join(consumer, "cdktf.out");
    const synth = spawnSync(process.execPath, [join(consumer, "dist", "main.js")], {
      cwd: consumer,
      encoding: "utf8",
      env: { ...process.env, CDKTF_OUTDIR: outdir },
    });
    expect(synth.stderr).toBe("");
    expect(synth.status).toBe(0);
    expect(readdirSync(join(outdir, "stacks"))).toEqual(["orders"]);
    const tf = JSON.parse(readFileSync(join(outdir, "stacks", "orders", "cdk.tf.json"), "utf8"));

    const [deployment] = Object.values(tf.resource.kubernetes_deployment_v1) as TfDeployment[];
    const pod = deployment.spec.template.spec;
    expect(pod.container[0]).toMatchObject({ image: "ghcr.io/acme/orders:1.4.2", command: ["node", "dist/main.js"] });
    expect(deployment.spec.replicas).toBeUndefined(); // the HPA owns the count
    expect(pod.priority_class_name).toBe("business-critical"); // the escape hatch took
    // Timeouts still derive from the spec the consumer gave (20 s grace + 5 s preStop + margin).
    expect(pod.termination_grace_period_seconds).toBeGreaterThan(25);
    expect(tf.provider.kubernetes[0]).toMatchObject({ config_context: "staging" });

    // The health check runs the CLI inside the installed package, not one from this checkout.
    const [check] = Object.values(tf.resource.terraform_data) as TfData[];
    const exec = check.provisioner[0]["local-exec"];
    expect(exec.environment.NODESCALE_HEALTH_CLI).toBe(join(installed, "dist", "health", "cli.js"));
    expect(exec.command).toMatch(/^node "\$NODESCALE_HEALTH_CLI" --url "\$NODESCALE_URL"/);
  });

  it("installs the health check as a command of the consumer project", () => {
    const run = spawnSync(join(consumer, "node_modules", ".bin", "nodescale-health"), ["--url", "nope"], { encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^nodescale-health: --url must be an http\(s\) URL, got "nope"/);
  });
});
