import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Testing } from "../../constructs/cdk";
import { packRelease } from "../../constructs/release/release-pack";
import { reproducibleTarGz } from "../../constructs/release/tar";
import { gzippedScript } from "../../constructs/vm/droplet-common";
import { parseConfig } from "../../stacks/config";
import { DoksStack } from "../../stacks/doks";
import { EksStack } from "../../stacks/eks";
import { K8sStack } from "../../stacks/k8s";
import { VmPm2Stack } from "../../stacks/vm-pm2";
import { VmPm2DoStack } from "../../stacks/vm-pm2-do";
import { fixtureBundle } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";
import { decodedLayers, findSecrets, findSecretsInSynth } from "../helpers/secret-scan";

// "Secrets never appear in clear in config, synthesized JSON, user data or outputs", searched for the secrets' real
// VALUES (set in the deploying shell, as a deploy has them) through every encoding user data takes: base64, gzip,
// the Droplet's gzipped stub, an inline release, nested. ssm:/secretsmanager: values never reach the deploying
// machine (the machine's role or the cluster's data source reads them), so what can leak at synth is an env: value
// (the variable and its TF_VAR_ twin) and a value written into the config where a reference belongs.

const ENV_VALUE = "env-secret-value-3c9e1a7b";
const LITERAL_VALUE = "literal-in-config-5d2f8e0c";
const secrets = {
  DB_PASSWORD: "ssm:/orders/db-password",
  API_KEY: "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf",
  WEBHOOK_TOKEN: "env:ORDERS_WEBHOOK_TOKEN",
};
const DEPLOY_KEY = {
  publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy2gd0cUIyZ3kx8p2zLXlUqMWfVh0l0t0gJ7kz9y8Lq deploy@ci",
  privateKeyFile: "~/.ssh/nodescale-deploy",
};
const bundle = fixtureBundle();
const sampleBundle = packRelease({ appDir: join(ROOT, "app") });
const RELEASE = "c".repeat(64);
const appDir = join(ROOT, "app");

describe("the secret scanner", () => {
  const script = `#!/usr/bin/env bash\nexport TOKEN='${ENV_VALUE}'\n`;
  const base64 = Buffer.from(script).toString("base64");

  it.each([
    ["in plain text", script],
    ["in base64", base64],
    ["in base64 wrapped at 76 columns", (base64.repeat(4).match(/.{1,76}/g) ?? []).join("\n")],
    ["in base64 at any byte offset of a longer run", Buffer.from(`xy${script}`).toString("base64")],
    ["in gzip, then base64 (EC2's user_data_base64)", gzipSync(script).toString("base64")],
    ["in the Droplet's gzipped stub", gzippedScript(script)],
    ["in a JSON string (escaped newlines)", JSON.stringify({ user_data: gzippedScript(script) })],
    [
      "in a release tarball inside the stub inside base64 (nested)",
      Buffer.from(
        gzippedScript(
          `base64 -d <<'B'\n${reproducibleTarGz([{ path: "app/.env", kind: "file", executable: false, data: Buffer.from(script) }]).toString("base64")}\nB\n`,
        ),
      ).toString("base64"),
    ],
  ])("finds a value %s", (_, text) => {
    expect(findSecrets(text, [ENV_VALUE]).length).toBeGreaterThan(0);
  });

  it("finds nothing where the value is not", () => {
    expect(findSecrets(gzippedScript(script.replace(ENV_VALUE, "another-value-entirely")), [ENV_VALUE])).toEqual([]);
  });
});

describe("no secret value in what a stack synthesizes, with secrets of each kind set", () => {
  beforeAll(() => {
    process.env.ORDERS_WEBHOOK_TOKEN = ENV_VALUE;
    process.env.TF_VAR_ORDERS_WEBHOOK_TOKEN = ENV_VALUE;
  });
  afterAll(() => {
    delete process.env.ORDERS_WEBHOOK_TOKEN;
    delete process.env.TF_VAR_ORDERS_WEBHOOK_TOKEN;
  });

  const service = { name: "orders-api", secrets, domain: "orders.example.com" };
  const stacks: [string, () => string][] = [
    ...[1, 2].map((machines): [string, () => string] => [
      `vm-pm2, ${machines} machine(s)`,
      () => Testing.synth(new VmPm2Stack(Testing.app(), "vm-pm2", { loaded: parseConfig({ service, vm: { machines } }), bundle }), true),
    ]),
    ...[1, 2].map((machines): [string, () => string] => [
      `vm-pm2-do, ${machines} machine(s), the sample app's release in user data (the gzipped stub)`,
      () =>
        Testing.synth(
          new VmPm2DoStack(Testing.app(), "vm-pm2-do", {
            loaded: parseConfig({ service: { ...service, domain: machines === 1 ? service.domain : undefined }, vm: { machines } }),
            bundle: sampleBundle,
          }),
          true,
        ),
    ]),
    [
      "vm-pm2-do, a small release in user data (as text)",
      () => Testing.synth(new VmPm2DoStack(Testing.app(), "vm-pm2-do", { loaded: parseConfig({ service }), bundle }), true),
    ],
    [
      "vm-pm2-do, releases over SSH",
      () =>
        Testing.synth(
          new VmPm2DoStack(Testing.app(), "vm-pm2-do", {
            loaded: parseConfig({ service, vm: { digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: DEPLOY_KEY } } }),
            bundle,
          }),
          true,
        ),
    ],
    [
      "eks",
      () => Testing.synth(new EksStack(Testing.app(), "eks", { loaded: parseConfig({ service }), appDir, releaseId: RELEASE }), true),
    ],
    [
      "doks",
      () => Testing.synth(new DoksStack(Testing.app(), "doks", { loaded: parseConfig({ service }), appDir, releaseId: RELEASE }), true),
    ],
    [
      "k8s",
      () =>
        Testing.synth(
          new K8sStack(Testing.app(), "k8s", {
            loaded: parseConfig({
              service,
              image: "ghcr.io/acme/orders:1.4.2",
              kubernetes: { cluster: { context: "prod", ingressClassName: "traefik", ingressNamespace: "traefik" } },
            }),
            appDir,
            releaseId: RELEASE,
          }),
          true,
        ),
    ],
  ];

  it.each(stacks)("%s: not in the JSON, user data (decoded) or outputs", (_, synth) => {
    const json = synth();
    expect(findSecretsInSynth(json, [ENV_VALUE])).toEqual([]);
    // The references themselves are there (the scan looked at the right stack), their values are not.
    expect(json).toContain("ORDERS_WEBHOOK_TOKEN");
  });

  it.each([
    ["EC2's gzipped user data", 0, "user_data_base64"],
    ["the Droplet's gzipped stub", 2, "user_data"],
  ])("reads inside %s (the scan does not stop at the encoding)", (_, index, field) => {
    const parsed = JSON.parse(stacks[index][1]()) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    const machine = parsed.resource.aws_instance ?? parsed.resource.digitalocean_droplet;
    const userData = Object.values(machine)[0][field] as string;
    const layers = decodedLayers(userData, field);
    expect(layers.some((l) => l.where.includes("gunzipped") && l.text.includes("readonly NODE_MIRROR="))).toBe(true);
    // The release inside it too (the Droplet's, a tarball in the script), down to the app's package.json.
    if (field === "user_data") expect(layers.some((l) => l.text.includes('"name": "nodescale-sample-app"'))).toBe(true);
  });

  it("refuses a value written where a reference belongs, without printing it", () => {
    expect(() => parseConfig({ service: { secrets: { TOKEN: LITERAL_VALUE } } })).toThrow(
      'service.secrets.TOKEN: a value of 26 characters (not shown) is not allowed: must be a reference, never a value: "ssm:/path/to/parameter", "secretsmanager:arn:aws:secretsmanager:<region>:<account>:secret:<name>" or "env:VARIABLE"',
    );
    let message = "";
    try {
      parseConfig({ service: { secrets: { TOKEN: LITERAL_VALUE } } });
    } catch (error) {
      message = String(error);
    }
    expect(findSecrets(message, [LITERAL_VALUE])).toEqual([]);
  });
});
