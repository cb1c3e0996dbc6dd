// moto (PyPI, pinned by scripts/terraform-tools.sh) as the AWS stand-in: started on a loopback port, stopped by pid;
// and the override file that points a synthesized AWS stack at it.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/processes";
import { ROOT, TOOLS_DIR } from "../helpers/terraform";

export const MOTO_PYTHON = join(TOOLS_DIR, "moto", "bin", "python");

/**
 * moto has no Ubuntu 24.04 image in its AMI catalog; the stacks look Canonical's up by name. moto reads its catalog
 * from MOTO_AMIS_PATH, so the test gives it one entry under Canonical's owner id and the name pattern the stack asks for.
 */
const AMIS = [
  {
    ami_id: "ami-0a1b2c3d4e5f60718",
    state: "available",
    public: true,
    owner_id: "099720109477",
    image_location: "amazon/getting-started",
    sriov: "simple",
    root_device_type: "ebs",
    root_device_name: "/dev/sda1",
    description: "moto stand-in for Canonical, Ubuntu, 24.04, amd64 noble image",
    image_type: "machine",
    platform: null,
    architecture: "x86_64",
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260101",
    virtualization_type: "hvm",
    hypervisor: "xen",
  },
];

export interface Moto {
  readonly url: string;
  stop(): Promise<void>;
  /** Everything of NodeScale's kinds left in moto ({} when nothing). */
  leftovers(): Record<string, string[]>;
}

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "nodescale-moto-"));
  writeFileSync(join(dir, "amis.json"), JSON.stringify(AMIS));
  const child: ChildProcess = spawn(MOTO_PYTHON, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
    env: { ...process.env, MOTO_AMIS_PATH: join(dir, "amis.json") },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/moto-api/data.json`)).ok) break;
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`moto did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    leftovers() {
      const run = spawnSync(MOTO_PYTHON, [join(ROOT, "test", "terraform", "moto-leftovers.py"), url], { encoding: "utf8" });
      if (run.status !== 0) throw new Error(`moto-leftovers.py failed: ${run.stderr}`);
      return JSON.parse(run.stdout) as Record<string, string[]>;
    },
  };
}

/** The AWS services the stacks call, each pointed at moto. */
const SERVICES = [
  "acm",
  "autoscaling",
  "cloudwatch",
  "ec2",
  "ecr",
  "eks",
  "elbv2",
  "iam",
  "kms",
  "logs",
  "route53",
  "s3",
  "secretsmanager",
  "sns",
  "ssm",
  "sts",
];

interface TerraformData {
  provisioner?: { "local-exec"?: { command: string; environment?: Record<string, string> } }[];
}

/**
 * The override file for a synthesized AWS stack (`<stack>/moto_override.tf.json`): the provider talks to moto with
 * dummy credentials; state goes to `statePath`; and each health check's local-exec (the product's command, kept) is
 * run through standin-health.mjs, which serves the release the apply uploaded to moto's S3 on loopback.
 */
export function motoOverride(stack: Record<string, unknown>, motoUrl: string, statePath: string): Record<string, unknown> {
  const resources = (stack.resource ?? {}) as Record<string, Record<string, Record<string, unknown>>>;
  const bucket = Object.keys(resources.aws_s3_bucket ?? {}).find((name) => name.includes("Releases"));
  const checks: Record<string, TerraformData> = {};
  for (const [name, data] of Object.entries((resources.terraform_data ?? {}) as Record<string, TerraformData>)) {
    const exec = data.provisioner?.[0]?.["local-exec"];
    if (exec === undefined || !exec.command.includes("NODESCALE_HEALTH_CLI")) continue;
    if (bucket === undefined) throw new Error(`${name}: a health check but no release bucket to read the release from`);
    checks[name] = {
      provisioner: [
        {
          "local-exec": {
            command: `node "$NODESCALE_STANDIN" -- ${exec.command}`,
            environment: {
              ...exec.environment,
              NODESCALE_STANDIN: join(ROOT, "test", "terraform", "standin-health.mjs"),
              NODESCALE_STANDIN_PRELOAD: join(ROOT, "templates", "vm", "release-headers.cjs"),
              NODESCALE_STANDIN_PYTHON: MOTO_PYTHON,
              NODESCALE_STANDIN_ENDPOINT: motoUrl,
              NODESCALE_STANDIN_BUCKET: `\${aws_s3_bucket.${bucket}.bucket}`,
              NODESCALE_STANDIN_KEY: `releases/${exec.environment?.NODESCALE_RELEASE}.tar.gz`,
            },
          },
        },
      ],
    };
  }
  // moto 5.2.6 has no SSM associations (CreateAssociation is not implemented): the stack's associations (the
  // release rollout, the CloudWatch agent's install and configuration) are left out of the apply, by name, and listed
  // in docs/terraform.md. Nothing else is.
  const associations = Object.fromEntries(Object.keys(resources.aws_ssm_association ?? {}).map((name) => [name, { count: 0 }]));
  const resource: Record<string, unknown> = {};
  if (Object.keys(checks).length > 0) resource.terraform_data = checks;
  if (Object.keys(associations).length > 0) resource.aws_ssm_association = associations;
  return {
    terraform: { backend: { local: { path: statePath } } },
    provider: {
      aws: [
        {
          access_key: "moto",
          secret_key: "moto",
          skip_credentials_validation: true,
          skip_requesting_account_id: true,
          skip_metadata_api_check: true,
          s3_use_path_style: true,
          endpoints: [Object.fromEntries(SERVICES.map((s) => [s, motoUrl]))],
        },
      ],
    },
    ...(Object.keys(resource).length > 0 ? { resource } : {}),
  };
}
