import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { type Construct, Testing } from "../../constructs/cdk";
import type { AppBundle } from "../../constructs/release/bundle";
import { withoutDependencies } from "../../constructs/release/machine-install";
import { readTarGz, reproducibleTarGz, type TarEntry } from "../../constructs/release/tar";
import { NODE_RELEASES } from "../../constructs/service/node-releases";
import { gzippedScript } from "../../constructs/vm/droplet-common";
import { DropletNodeHost } from "../../constructs/vm/droplet-host";
import { SSM_AGENT_ACTIONS } from "../../constructs/vm/ec2-common";
import { Ec2NodeHost } from "../../constructs/vm/ec2-host";
import { machineAgentSource } from "../../constructs/vm/machine-plan";
import { parseConfig } from "../../stacks/config";
import { VmPm2Stack } from "../../stacks/vm-pm2";
import { VmPm2DoStack } from "../../stacks/vm-pm2-do";
import { fixtureBundle, tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";
import { all, inventory, only, type Synth } from "../helpers/synth";
import { shellcheck } from "../helpers/tools";

const bundle = fixtureBundle();

type Exec = { "local-exec": { command: string; environment: Record<string, string> } };
function checks(parsed: Synth, prefix: string): [string, { provisioner: Exec[]; depends_on?: string[] }][] {
  return Object.entries(parsed.resource.terraform_data).filter(([k]) => k.startsWith(prefix)) as [string, { provisioner: Exec[] }][];
}

function synthAws(raw: unknown = {}) {
  const app = Testing.app();
  const stack = new VmPm2Stack(app, "vm-pm2", { loaded: parseConfig(raw), bundle });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

/** The SSM association that re-runs the provision script with a new release. */
const rollout = (parsed: Synth) =>
  all(parsed.resource, "aws_ssm_association").find((a) => a.name === "AWS-RunShellScript") as Record<string, unknown>;

function synthDo(raw: unknown = {}) {
  const app = Testing.app();
  const stack = new VmPm2DoStack(app, "vm-pm2-do", { loaded: parseConfig(raw), bundle });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

describe("vm-pm2 (AWS EC2)", () => {
  const { parsed, stack } = synthAws({ service: { workers: 2 }, vm: { aws: { sshCidrs: ["203.0.113.7/32"] } } });
  const ingress = Object.values(parsed.resource.aws_vpc_security_group_ingress_rule);

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("requires IMDSv2, encrypts a gp3 root volume and turns on detailed monitoring", () => {
    const instance = only(parsed.resource, "aws_instance");
    expect(instance.metadata_options).toEqual({
      http_endpoint: "enabled",
      http_put_response_hop_limit: 1,
      http_tokens: "required",
      instance_metadata_tags: "enabled",
    });
    expect(instance.root_block_device).toEqual({ delete_on_termination: true, encrypted: true, volume_size: 20, volume_type: "gp3" });
    expect(instance.monitoring).toBe(true);
  });

  it("opens only 80 and 443 to the world, SSH only to the listed CIDR, with a description on every rule", () => {
    const world = ingress.filter((r) => r.cidr_ipv4 === "0.0.0.0/0" || r.cidr_ipv6 === "::/0");
    expect(world.map((r) => r.from_port).sort()).toEqual([443, 443, 80, 80]);
    const ssh = ingress.filter((r) => r.from_port === 22);
    expect(ssh).toEqual([expect.objectContaining({ cidr_ipv4: "203.0.113.7/32", to_port: 22, description: "SSH from 203.0.113.7/32" })]);
    for (const rule of [...ingress, ...Object.values(parsed.resource.aws_vpc_security_group_egress_rule)]) {
      expect(rule.description).toEqual(expect.any(String));
    }
  });

  it("opens no SSH at all by default", () => {
    const defaults = synthAws().parsed;
    expect(Object.values(defaults.resource.aws_vpc_security_group_ingress_rule).some((r) => r.from_port === 22)).toBe(false);
  });

  it("looks up the Ubuntu LTS AMI from Canonical by owner and name", () => {
    const ami = only(parsed.data, "aws_ami");
    expect(ami.owners).toEqual(["099720109477"]);
    expect(ami.filter).toContainEqual({ name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"] });
  });

  it("closes the metadata service (the role's credentials) to the app: the synthesized PM2 unit denies its addresses", () => {
    const script = stack.host?.userData ?? "";
    const unit =
      /cat > \/etc\/systemd\/system\/nodescale-pm2\.service\.tmp <<'NODESCALE_UNIT'\n([\s\S]*?)\nNODESCALE_UNIT/.exec(script)?.[1] ?? "";
    expect(unit).toContain("User=nodescale");
    expect(unit.split("\n").filter((l) => l.startsWith("IPAddressDeny="))).toEqual(["IPAddressDeny=169.254.169.254 fd00:ec2::254"]);
    // A configured endpoint (a test's loopback stand-in) is denied too, through a drop-in; never the app's own 127.0.0.1.
    expect(script).toContain(
      "printf '[Service]\\nIPAddressDeny=%s\\n' \"${imds_deny}\" > /etc/systemd/system/nodescale-pm2.service.d/metadata.conf",
    );
  });

  it("gives the instance SSM access and read access to its releases only", () => {
    // No managed policy: AmazonSSMManagedInstanceCore reads every SSM parameter in the account (ssm:GetParameter on *).
    expect(parsed.resource.aws_iam_role_policy_attachment).toBeUndefined();
    const documents = Object.values(parsed.data.aws_iam_policy_document) as {
      statement: { sid?: string; actions: string[]; resources: string[] }[];
    }[];
    const ssmAgent = documents.find((d) => d.statement.some((s) => s.sid === "SsmAgent"));
    expect(ssmAgent?.statement).toEqual([
      { sid: "SsmAgent", actions: [...SSM_AGENT_ACTIONS.ssm], resources: ["*"] },
      { sid: "SessionManager", actions: [...SSM_AGENT_ACTIONS.ssmmessages], resources: ["*"] },
      { sid: "RunCommand", actions: [...SSM_AGENT_ACTIONS.ec2messages], resources: ["*"] },
    ]);
    // What Session Manager and the rollout's association need is there; no parameter or secret is readable on `*`.
    expect(SSM_AGENT_ACTIONS.ssm).toEqual(
      expect.arrayContaining(["ssm:UpdateInstanceInformation", "ssm:ListInstanceAssociations", "ssm:UpdateInstanceAssociationStatus"]),
    );
    const wildcard = documents
      .flatMap((d) => d.statement)
      .filter((s) => (s.resources ?? []).includes("*"))
      .flatMap((s) => s.actions);
    expect(
      wildcard.filter((a) => /^(ssm:GetParameter|ssm:GetParameters|ssm:GetParametersByPath|secretsmanager:|kms:|s3:)/.test(a)),
    ).toEqual([]);
    const attached = all(parsed.resource, "aws_iam_role_policy").map((p) => String(p.policy));
    expect(attached.filter((p) => /aws_iam_policy_document\.\w*SsmAgent_\w+\.json/.test(p))).toHaveLength(1);
    const read = Object.values(parsed.data.aws_iam_policy_document).find((d) => JSON.stringify(d).includes("s3:GetObject"));
    expect(JSON.stringify(read)).toContain("/releases/*");
  });

  it("ships the app through a private, encrypted S3 object, not the 16 KiB user data", () => {
    expect(only(parsed.resource, "aws_s3_bucket_public_access_block")).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(JSON.stringify(only(parsed.resource, "aws_s3_bucket_server_side_encryption_configuration"))).toContain(
      '"sse_algorithm":"AES256"',
    );
    const objects = all(parsed.resource, "aws_s3_object");
    const object = objects.find((o) => String(o.key).startsWith("releases/")) ?? {};
    const agent = objects.find((o) => String(o.key).startsWith("machine/")) ?? {};
    expect(object).toMatchObject({ key: `releases/${bundle.sha256}.tar.gz`, source_hash: bundle.sha256, server_side_encryption: "AES256" });
    // The machine agent too: EC2's user data is 16 KiB gzipped, and fetches it checked against its SHA-256.
    expect(agent.key).toBe(`machine/agent-${agent.source_hash}.js`);
    const script = stack.host?.userData ?? "";
    expect(script).not.toContain("NODESCALE_AGENT");
    expect(script).toContain(`echo "${agent.source_hash}  /opt/nodescale/bin/machine-agent.js.tmp" | sha256sum --check --strict --quiet -`);
    const instance = only(parsed.resource, "aws_instance");
    expect((instance.tags as Record<string, string>).NodeScaleBundleSha256).toBe(bundle.sha256);
  });

  it("limits each client at its Nginx by default (429 beyond service.clientLimits), the whole burst of the check fitting", () => {
    const script = stack.host?.userData ?? "";
    expect(script).toContain("limit_req_zone $binary_remote_addr zone=nodescale_hello_node_requests:10m rate=100r/s;");
    expect(script).toContain("limit_conn nodescale_hello_node_connections 100;");
    // The default burst (200) lets the check's 200 requests through, so the check sends its usual burst.
    expect(checks(parsed, "HealthCheck")[0][1].provisioner[0]["local-exec"].command).not.toContain("--requests");
  });

  it("downloads Node.js from vm.nodeMirror (checksum unchanged) and keeps vm.keepReleases releases", () => {
    const mirrored = new VmPm2Stack(Testing.app(), "vm-pm2", {
      loaded: parseConfig({ vm: { nodeMirror: "https://mirror.example.com/nodejs/dist/", keepReleases: 5 } }),
      bundle,
    });
    const script = mirrored.host?.userData ?? "";
    expect(script).toContain('readonly NODE_MIRROR="https://mirror.example.com/nodejs/dist"');
    expect(script).toContain('curl -fsSL --retry 5 "${NODE_MIRROR}/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz"');
    expect(script).toContain(`readonly NODE_SHA256="${NODE_RELEASES[22].linuxX64Sha256}"`);
    expect(script).toContain('"keepReleases":5');
    expect(stack.host?.userData).toContain('readonly NODE_MIRROR="https://nodejs.org/dist"');
    expect(stack.host?.userData).toContain('"keepReleases":3');
    expect(() => parseConfig({ vm: { nodeMirror: "ftp://mirror.example.com" } })).toThrow(
      'vm.nodeMirror: "ftp://mirror.example.com" is not allowed: must be an http(s) URL with nodejs.org/dist\'s layout, such as https://mirror.example.com/nodejs/dist',
    );
  });

  it("renders gzipped user data that installs Nginx and PM2 and passes shellcheck", () => {
    const instance = only(parsed.resource, "aws_instance");
    const script = gunzipSync(Buffer.from(instance.user_data_base64 as string, "base64")).toString();
    expect(script).toBe(stack.host?.userData);
    expect(script).toContain("apt_install nginx");
    // With or without SSH keys given, no password logs in (a Droplet without keys gets an e-mailed root password).
    expect(script).toContain(
      'printf \'%s\\n\' "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password"',
    );
    expect(script).toContain('"exec_mode":"cluster"');
    expect(script).toContain("instance_tag NodeScaleBundle)");
    expect(shellcheck(script)).toBe("");
  });

  it("carves its subnet with cidrsubnet() from the VPC and the zone list, not string surgery", () => {
    const subnet = only(parsed.resource, "aws_subnet");
    expect(subnet.cidr_block).toMatch(/^\$\{cidrsubnet\(aws_vpc\.Host_Network_Vpc_[0-9A-F]+\.cidr_block, 8, 0\)\}$/);
    expect(subnet.availability_zone).toMatch(/^\$\{element\(data\.aws_availability_zones\.Host_Network_Zones_[0-9A-F]+\.names, 0\)\}$/);
  });

  it("routes to the internet through an aws_route of its own, never an inline route block (newer providers require attributes 6.25.0 lacks)", () => {
    const table = only(parsed.resource, "aws_route_table");
    expect(table).not.toHaveProperty("route");
    const route = only(parsed.resource, "aws_route");
    expect(route.destination_cidr_block).toBe("0.0.0.0/0");
    expect(route.route_table_id).toMatch(/^\$\{aws_route_table\.Host_Network_PublicRoutes_[0-9A-F]+\.id\}$/);
    expect(route.gateway_id).toMatch(/^\$\{aws_internet_gateway\.Host_Network_Igw_[0-9A-F]+\.id\}$/);
  });

  it("adopts its VPC's default security group with no rules, so that group allows nothing", () => {
    const fallback = only(parsed.resource, "aws_default_security_group");
    expect(fallback.vpc_id).toMatch(/^\$\{aws_vpc\.Host_Network_Vpc_[0-9A-F]+\.id\}$/);
    expect(fallback).not.toHaveProperty("ingress");
    expect(fallback).not.toHaveProperty("egress");
  });

  it("replaces the instance blue/green: the new one answers healthy on its own address before the Elastic IP moves", () => {
    const instance = only(parsed.resource, "aws_instance");
    expect(instance.lifecycle).toEqual({ ignore_changes: ["ami"], create_before_destroy: true });
    expect(instance.associate_public_ip_address).toBe(true);
    const association = only(parsed.resource, "aws_eip_association");
    const ready = Object.keys(parsed.resource.terraform_data).find((k) => k.startsWith("Host_ReadyBeforeAddressMoves"));
    expect(association.depends_on).toEqual([`terraform_data.${ready}`]);
    expect(association.instance_id).toMatch(/^\$\{aws_instance\.Host_Instance_[0-9A-F]+\.id\}$/);
  });

  it("rolls a new release out in place through SSM, re-running the provision script", () => {
    const association = rollout(parsed);
    expect(association).toMatchObject({ name: "AWS-RunShellScript", max_concurrency: "1", max_errors: "0" });
    expect(association.parameters).toEqual({
      commands: expect.stringMatching(
        new RegExp(
          `^NODESCALE_BUNDLE_URI=s3://\\$\\{aws_s3_bucket\\.Host_Releases_Bucket_\\w+\\.bucket\\}/releases/${bundle.sha256}\\.tar\\.gz NODESCALE_BUNDLE_SHA256=${bundle.sha256} /opt/nodescale/bin/provision\\.sh$`,
        ),
      ),
    });
  });

  it("outputs url, public IP and instance id, and ends with a health check on the url", () => {
    expect(Object.keys(parsed.output).sort()).toEqual(["instance_id", "public_ip", "url"]);
    expect(parsed.output.url.value).toMatch(/^http:\/\/\$\{aws_eip\.Host_Eip_[0-9A-F]+\.public_ip\}$/);
    const check = Object.entries(parsed.resource.terraform_data).find(([k]) => k.startsWith("HealthCheck"))?.[1] as {
      provisioner: { "local-exec": { command: string } }[];
      triggers_replace: Record<string, string>;
    };
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-workers 2");
    expect(check.triggers_replace.apply).toBe("${timestamp()}");
  });

  it("uses an existing VPC when both vpcId and subnetId are given", () => {
    const existing = synthAws({ vm: { aws: { vpcId: "vpc-0abc1234", subnetId: "subnet-0abc1234" } } }).parsed;
    expect(existing.resource.aws_vpc).toBeUndefined();
    // Someone else's VPC: its default security group is not ours to change.
    expect(existing.resource.aws_default_security_group).toBeUndefined();
    expect(only(existing.resource, "aws_instance").subnet_id).toBe("subnet-0abc1234");
  });

  it("stores state in DigitalOcean Spaces through the S3 backend when an endpoint is given", () => {
    const spaces = synthAws({
      state: { backend: "s3", bucket: "acme-state", region: "us-east-1", endpoint: "https://nyc3.digitaloceanspaces.com" },
    }).parsed;
    expect(spaces.terraform?.backend?.s3).toMatchObject({
      endpoints: { s3: "https://nyc3.digitaloceanspaces.com" },
      skip_credentials_validation: true,
      skip_requesting_account_id: true,
      use_lockfile: true,
    });
  });

  it("encrypts state with the KMS key given: state holds secrets", () => {
    const key = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const remote = synthAws({ state: { backend: "s3", bucket: "acme-tf-state", region: "eu-west-1", kmsKeyId: key } }).parsed;
    expect(remote.terraform?.backend?.s3).toMatchObject({ encrypt: true, kms_key_id: key });
  });

  it("stores state in S3 with a lock file when configured", () => {
    const remote = synthAws({ state: { backend: "s3", bucket: "acme-tf-state", region: "eu-west-1" } }).parsed;
    expect(remote.terraform?.backend?.s3).toEqual({
      bucket: "acme-tf-state",
      key: "nodescale/vm-pm2.tfstate",
      region: "eu-west-1",
      encrypt: true,
      use_lockfile: true,
    });
  });
});

describe("vm-pm2-do (DigitalOcean Droplet)", () => {
  const { parsed, stack } = synthDo({ vm: { digitalocean: { sshCidrs: ["198.51.100.0/24"] } } });

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("runs Ubuntu LTS with monitoring and tags", () => {
    expect(only(parsed.resource, "digitalocean_droplet")).toMatchObject({
      image: "ubuntu-24-04-x64",
      monitoring: true,
      tags: [expect.stringMatching(/^\$\{digitalocean_tag\.Host_Tag_[0-9A-F]+\.name\}$/), "nodescale"],
    });
    expect(only(parsed.resource, "digitalocean_tag").name).toBe("nodescale-hello-node");
  });

  it("firewalls the Droplet: 80/443 from anywhere, SSH only from the listed CIDRs", () => {
    const inbound = only(parsed.resource, "digitalocean_firewall").inbound_rule as Record<string, unknown>[];
    expect(inbound).toEqual([
      { protocol: "tcp", port_range: "80", source_addresses: ["0.0.0.0/0", "::/0"] },
      { protocol: "tcp", port_range: "443", source_addresses: ["0.0.0.0/0", "::/0"] },
      { protocol: "tcp", port_range: "22", source_addresses: ["198.51.100.0/24"] },
    ]);
  });

  it("puts the same provision script in the user data, escaped from Terraform's template syntax", () => {
    const userData = only(parsed.resource, "digitalocean_droplet").user_data as string;
    const rendered = stack.host?.userData.script ?? "";
    expect(userData.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{")).toBe(rendered);
    expect(userData).not.toMatch(/(^|[^$])\$\{/);
    expect(rendered).toContain(`BUNDLE_SHA256="${bundle.sha256}"`);
    expect(shellcheck(rendered)).toBe("");
  });

  it("replaces the Droplet blue/green: the new one answers healthy on its own address before the reserved IP moves", () => {
    const droplet = only(parsed.resource, "digitalocean_droplet");
    expect(droplet.lifecycle).toEqual({ create_before_destroy: true });
    const assignment = only(parsed.resource, "digitalocean_reserved_ip_assignment");
    expect(assignment.droplet_id).toMatch(/^\$\{digitalocean_droplet\.Host_Droplet_[0-9A-F]+\.id\}$/);
    const [[readyId, ready]] = checks(parsed, "Host_ReadyBeforeAddressMoves");
    expect(assignment.depends_on).toEqual([`terraform_data.${readyId}`]);
    const exec = ready.provisioner[0]["local-exec"];
    expect(exec.environment.NODESCALE_URL).toMatch(/^http:\/\/\$\{digitalocean_droplet\.Host_Droplet_[0-9A-F]+\.ipv4_address\}$/);
    expect(exec.command).toContain('--expect-release "$NODESCALE_RELEASE"');
    expect(only(parsed.resource, "digitalocean_firewall").tags).toEqual([expect.stringContaining("digitalocean_tag.Host_Tag_")]);
  });

  it("keeps the address on a reserved IP and outputs the url", () => {
    expect(parsed.output.url.value).toMatch(/^http:\/\/\$\{digitalocean_reserved_ip\.Host_ReservedIp_[0-9A-F]+\.ip_address\}$/);
  });

  it("refuses a release too large for the 64 KiB user data at plan, before anything changes, and leaves it out of the JSON", () => {
    expect(only(parsed.resource, "digitalocean_droplet").lifecycle).toEqual({ create_before_destroy: true });
    // 60 KiB of sources that do not compress: too big even without node_modules.
    const noise = Buffer.concat(Array.from({ length: 1920 }, (_, i) => createHash("sha256").update(String(i)).digest()));
    const big = bundleOf([{ path: "dist/main.js", kind: "file", executable: false, data: noise }]);
    const app = Testing.app();
    const refused = JSON.parse(Testing.synth(new VmPm2DoStack(app, "vm-pm2-do", { loaded: parseConfig({}), bundle: big })));
    const [[localName, bytes]] = Object.entries(refused.locals) as [string, number][];
    expect(bytes).toBeGreaterThan(65536);
    const droplet = only(refused.resource, "digitalocean_droplet") as { lifecycle: { precondition: unknown }; user_data: string };
    expect(droplet.lifecycle.precondition).toEqual([
      {
        condition: `\${(local.${localName} <= 65536)}`,
        error_message: expect.stringMatching(
          /^DropletNodeHost: the release \(\d+ bytes packed; \d+ without node_modules\) makes the user data \d+ bytes, over DigitalOcean's limit of 65536 bytes, and Droplets receive their release in user data\. Nothing was changed\. Push releases over SSH instead/,
        ),
      },
    ]);
    expect(droplet.user_data.length).toBeLessThan(65536);
  });

  it("ships a release whose node_modules do not fit without them: the Droplet installs the locked packages itself", () => {
    const deps = Buffer.concat(Array.from({ length: 2400 }, (_, i) => createHash("sha256").update(`dep${i}`).digest()));
    const withDeps = bundleOf([
      ...readTarGz(bundle.data),
      { path: "node_modules/big-dep/index.js", kind: "file", executable: false, data: deps },
    ]);
    const app = Testing.app();
    const stack = new VmPm2DoStack(app, "vm-pm2-do", { loaded: parseConfig({}), bundle: withDeps });
    const synth = JSON.parse(Testing.synth(stack));
    const droplet = only(synth.resource, "digitalocean_droplet") as { lifecycle: Record<string, unknown>; user_data: string };
    expect(droplet.lifecycle).toEqual({ create_before_destroy: true });
    const lean = withoutDependencies(withDeps);
    expect(stack.host?.userData.release.sha256).toBe(lean.sha256);
    // The release in the user data is the lean one, marker included; the checks wait for its id.
    const inline = /base64 -d > "\$1" <<'NODESCALE_BUNDLE'\n([\s\S]*?)\nNODESCALE_BUNDLE/.exec(droplet.user_data)?.[1] ?? "";
    expect(readTarGz(Buffer.from(inline.replace(/\n/g, ""), "base64")).map((e) => e.path)).toEqual([...lean.files]);
    expect(lean.files).toContain(".nodescale-npm-ci");
    expect(JSON.stringify(synth)).toContain(`"NODESCALE_RELEASE":"${lean.sha256}"`);
    expect(JSON.stringify(synth)).not.toContain(withDeps.sha256);
  });
});

describe("a provision script too big for a Droplet's user data as text", () => {
  it("travels gzipped behind a stub that unpacks exactly it and runs it (shellcheck-clean)", () => {
    const script = `#!/usr/bin/env bash\necho "${"x".repeat(70_000)}"\n`;
    const stub = gzippedScript(script);
    expect(stub.length).toBeLessThan(2_000);
    expect(shellcheck(stub)).toBe("");
    const payload = /<<'NODESCALE_GZIP' \| gunzip > \S+\n([\s\S]*?)\nNODESCALE_GZIP/.exec(stub)?.[1] ?? "";
    expect(gunzipSync(Buffer.from(payload.replace(/\n/g, ""), "base64")).toString()).toBe(script);
    expect(stub.trimEnd().split("\n").slice(-3)).toEqual([
      "chmod 0700 /run/nodescale-provision.sh.tmp",
      "mv -f /run/nodescale-provision.sh.tmp /run/nodescale-provision.sh",
      "exec bash /run/nodescale-provision.sh",
    ]);
  });
});

function bundleOf(entries: TarEntry[]): AppBundle {
  const data = reproducibleTarGz(entries);
  return { data, sha256: createHash("sha256").update(data).digest("hex"), files: entries.map((e) => e.path).sort(), entry: "dist/main.js" };
}

const DEPLOY_KEY = {
  publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy2gd0cUIyZ3kx8p2zLXlUqMWfVh0l0t0gJ7kz9y8Lq deploy@ci",
  privateKeyFile: "~/.ssh/nodescale-deploy",
};
type Push = {
  triggers_replace: Record<string, string>;
  depends_on: string[];
  lifecycle: { precondition: { condition: string; error_message: string }[] };
  provisioner: Exec[];
};
const pushes = (parsed: Synth) => checks(parsed, "").filter(([k]) => /Release\d*_Push_/.test(k)) as unknown as [string, Push][];

describe("vm-pm2-do with vm.digitalocean.deployKey (releases over SSH, in place)", () => {
  const raw = { vm: { digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: DEPLOY_KEY } } };
  const { parsed, stack } = synthDo(raw);
  const script = stack.host?.userData.script ?? "";

  it("keeps the release out of the user data: a new release leaves the Droplet (and its user data) as it is", () => {
    expect(script).not.toContain(bundle.sha256);
    expect(script).toContain('BUNDLE_SHA256="${NODESCALE_BUNDLE_SHA256:-}"');
    expect(shellcheck(script)).toBe("");
    const other = { ...bundle, sha256: "f".repeat(64) };
    const next = JSON.parse(
      Testing.synth(new VmPm2DoStack(Testing.app(), "vm-pm2-do", { loaded: parseConfig(raw), bundle: other })),
    ) as Synth;
    expect(only(next.resource, "digitalocean_droplet").user_data).toBe(only(parsed.resource, "digitalocean_droplet").user_data);
    const [[, push]] = pushes(next);
    expect(push.triggers_replace.release).toBe(other.sha256);
  });

  it("has the Droplet prove itself to the push with a key from its user data (made by Terraform, never in the JSON)", () => {
    const keyResource = Object.entries(parsed.resource.terraform_data).find(([k]) => k.includes("HostProof"));
    expect(keyResource?.[1]).toEqual({ input: '${sensitive(join("", [uuid(), uuid()]))}', lifecycle: { ignore_changes: ["input"] } });
    const proof = `terraform_data.${keyResource?.[0]}.output`;
    const userData = String(only(parsed.resource, "digitalocean_droplet").user_data);
    expect(userData.split("\n").slice(0, 2)).toEqual(["#!/usr/bin/env bash", `NODESCALE_HOST_PROOF='\${${proof}}'`]);
    expect(script).toContain("(umask 077 && printf '%s' \"${NODESCALE_HOST_PROOF}\" > /etc/nodescale/host-proof.tmp)");
    const [[, push]] = pushes(parsed);
    expect(push.provisioner[0]["local-exec"].environment.NODESCALE_HOST_PROOF).toBe(`\${nonsensitive(${proof})}`);
  });

  it("installs the public key for a user that may run only the release receiver; no private key anywhere in the JSON", () => {
    expect(script).toContain(`restrict,command="sudo -n /opt/nodescale/bin/receive-release" ${DEPLOY_KEY.publicKey}`);
    expect(script).toContain('nodescale-deploy ALL=(root) NOPASSWD: /opt/nodescale/bin/receive-release ""');
    expect(JSON.stringify(parsed)).not.toMatch(/PRIVATE KEY/);
  });

  it("pushes the release after the Droplet exists and before either health check; stops at plan without the key", () => {
    const [[pushId, push]] = pushes(parsed);
    expect(push.triggers_replace).toEqual({
      machine: expect.stringMatching(/^\$\{digitalocean_droplet\.Host_Droplet_[0-9A-F]+\.id\}$/),
      release: bundle.sha256,
    });
    expect(push.depends_on).toEqual([expect.stringMatching(/^digitalocean_droplet\.Host_Droplet_/)]);
    const exec = push.provisioner[0]["local-exec"];
    expect(exec.command).toBe('bash "$NODESCALE_PUSH"');
    expect(exec.environment).toMatchObject({ NODESCALE_KEY_FILE: "~/.ssh/nodescale-deploy", NODESCALE_SHA256: bundle.sha256 });
    expect(exec.environment.NODESCALE_BUNDLE).toMatch(/^assets\/Host_Release_Bundle_[0-9A-F]+\/[0-9A-F]+\/[0-9a-f]{64}\.tar\.gz$/);
    expect(push.lifecycle.precondition).toEqual([
      {
        condition: '${fileexists(pathexpand("~/.ssh/nodescale-deploy"))}',
        error_message:
          "The deploy key ~/.ssh/nodescale-deploy (sshRelease.privateKeyFile) is not on this machine: releases are pushed over SSH with it. Nothing was changed.",
      },
    ]);
    const [[, ready]] = checks(parsed, "Host_ReadyBeforeAddressMoves");
    expect(ready.depends_on).toEqual([`terraform_data.${pushId}`]);
    const [[, final]] = checks(parsed, "HealthCheck");
    expect(final.depends_on).toContain(`terraform_data.${pushId}`);
  });

  it("takes a release of any size: nothing is refused at plan", () => {
    const big = { ...bundle, data: Buffer.alloc(600 * 1024, 1) };
    const synth = JSON.parse(
      Testing.synth(new VmPm2DoStack(Testing.app(), "vm-pm2-do", { loaded: parseConfig(raw), bundle: big })),
    ) as Synth;
    expect(only(synth.resource, "digitalocean_droplet").lifecycle).toEqual({ create_before_destroy: true });
  });

  it("rolls a group in place one Droplet at a time", () => {
    const group = synthDo({ vm: { machines: 3, digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: DEPLOY_KEY } } }).parsed;
    const found = pushes(group);
    expect(found.map(([id]) => id.replace(/_Push_.*/, ""))).toEqual(["Group_Release1", "Group_Release2", "Group_Release3"]);
    expect(found[1][1].depends_on).toContain(`terraform_data.${found[0][0]}`);
    expect(found[2][1].depends_on).toContain(`terraform_data.${found[1][0]}`);
    const [[, inRotation1]] = checks(group, "Group_InRotation1");
    expect(inRotation1.depends_on).toEqual([`terraform_data.${found[0][0]}`]);
  });

  it("refuses a deploy key without an address that may reach SSH, and a private key pasted as the public one", () => {
    const host = (props: Partial<ConstructorParameters<typeof DropletNodeHost>[2]>) => () =>
      Testing.synthScope((scope: Construct) => {
        new DropletNodeHost(scope, "Host", { spec: parseConfig({}).spec, bundle, ...props });
      });
    expect(host({ sshRelease: DEPLOY_KEY })).toThrow(
      new Error(
        "DropletNodeHost sshCidrs: [] is not allowed: must name the address cdktf deploy runs from when sshRelease is set (releases are pushed over SSH)",
      ),
    );
    expect(
      host({ sshCidrs: ["198.51.100.7/32"], sshRelease: { ...DEPLOY_KEY, publicKey: "-----BEGIN OPENSSH PRIVATE KEY-----" } }),
    ).toThrow(
      new Error(
        'DropletNodeHost sshRelease.publicKey: "(a private key)" is not allowed: must be one OpenSSH public key line such as ssh-ed25519 AAAA... (the .pub file; never the private key)',
      ),
    );
  });
});

describe("vm-pm2 with vm.machines 3 (Auto Scaling group behind an ALB)", () => {
  const { parsed } = synthAws({ service: { workers: 2 }, vm: { machines: 3, minMachines: 2, maxMachines: 6, targetCpuPercent: 55 } });

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("spreads the group over two zones' public subnets, carved with cidrsubnet()", () => {
    const subnets = Object.values(parsed.resource.aws_subnet);
    expect(subnets.map((s) => s.cidr_block)).toEqual([
      expect.stringMatching(/^\$\{cidrsubnet\(aws_vpc\.Group_Network_Vpc_[0-9A-F]+\.cidr_block, 8, 0\)\}$/),
      expect.stringMatching(/^\$\{cidrsubnet\(aws_vpc\.Group_Network_Vpc_[0-9A-F]+\.cidr_block, 8, 1\)\}$/),
    ]);
    expect(subnets.map((s) => s.availability_zone)).toEqual([expect.stringContaining(".names, 0)"), expect.stringContaining(".names, 1)")]);
    const group = only(parsed.resource, "aws_autoscaling_group");
    expect(group).toMatchObject({ min_size: 2, max_size: 6, desired_capacity: 3, health_check_type: "ELB" });
    expect(group.vpc_zone_identifier).toHaveLength(2);
  });

  it("health-checks the ready path and drains longer than PM2's kill timeout; idles below Node's keep-alive", () => {
    const spec = parseConfig({}).spec;
    const target = only(parsed.resource, "aws_lb_target_group");
    expect(target.health_check).toMatchObject({ path: "/ready", matcher: "200", protocol: "HTTP" });
    expect(target.deregistration_delay).toBe(String(spec.deregistrationDelaySeconds));
    expect(Number(target.deregistration_delay)).toBeGreaterThan(spec.killTimeoutMs / 1000);
    const alb = only(parsed.resource, "aws_lb");
    expect(alb).toMatchObject({ load_balancer_type: "application", internal: false, idle_timeout: 60, drop_invalid_header_fields: true });
    expect(Number(alb.idle_timeout) * 1000).toBeLessThan(spec.keepAliveTimeoutMs);
  });

  it("rolls releases and specs by instance refresh, launch before terminate, rolling back on failure", () => {
    expect(only(parsed.resource, "aws_autoscaling_group").instance_refresh).toEqual({
      strategy: "Rolling",
      preferences: {
        min_healthy_percentage: 100,
        max_healthy_percentage: 200,
        instance_warmup: "300",
        skip_matching: true,
        auto_rollback: true,
      },
    });
    const template = only(parsed.resource, "aws_launch_template");
    const instanceTags = (template.tag_specifications as { resource_type: string; tags: Record<string, string> }[])[0];
    expect(instanceTags).toMatchObject({ resource_type: "instance", tags: { NodeScaleBundleSha256: bundle.sha256 } });
    expect(template.metadata_options).toEqual({
      http_endpoint: "enabled",
      http_put_response_hop_limit: 1,
      http_tokens: "required",
      instance_metadata_tags: "enabled",
    });
    expect(template.block_device_mappings).toEqual([
      { device_name: "/dev/sda1", ebs: { delete_on_termination: "true", encrypted: "true", volume_size: 20, volume_type: "gp3" } },
    ]);
  });

  it("tells each machine's agent it sits behind the load balancer", () => {
    const script = gunzipSync(Buffer.from(only(parsed.resource, "aws_launch_template").user_data as string, "base64")).toString();
    expect(script).toContain('"clientFacing":false');
    expect(synthAws().stack.host?.userData).toContain('"clientFacing":true');
  });

  it("limits each client by the address the ALB saw, and keeps the deploy's own check within that limit", () => {
    const group = synthAws({ vm: { machines: 3 }, service: { clientLimits: { burst: 50 } } });
    const script = group.stack.group?.userData ?? "";
    expect(script).toContain("limit_req_zone $nodescale_hello_node_client zone=nodescale_hello_node_requests:10m rate=100r/s;");
    expect(script).toContain("limit_req zone=nodescale_hello_node_requests burst=50 nodelay;");
    const check = checks(group.parsed, "HealthCheck")[0][1];
    expect(check.provisioner[0]["local-exec"].command).toContain("--requests 51");
    const off = synthAws({ vm: { machines: 3, clientLimits: false } });
    expect(off.stack.group?.userData).not.toContain("limit_req");
    expect(checks(off.parsed, "HealthCheck")[0][1].provisioner[0]["local-exec"].command).not.toContain("--requests");
  });

  it("lets the machines take HTTP from the load balancer only, and scales on CPU", () => {
    const ingress = Object.entries(parsed.resource.aws_vpc_security_group_ingress_rule);
    const toMachines = ingress.filter(([k]) => k.startsWith("Group_MachinesFromLoadBalancer")).map(([, r]) => r);
    expect(toMachines).toEqual([
      expect.objectContaining({
        from_port: 80,
        to_port: 80,
        referenced_security_group_id: expect.stringContaining("Group_LoadBalancerSecurityGroup"),
      }),
    ]);
    const world = ingress.filter(([, r]) => r.cidr_ipv4 === "0.0.0.0/0" || r.cidr_ipv6 === "::/0");
    expect(world.every(([, r]) => String(r.security_group_id).includes("Group_LoadBalancerSecurityGroup"))).toBe(true);
    expect(only(parsed.resource, "aws_autoscaling_policy")).toMatchObject({
      policy_type: "TargetTrackingScaling",
      target_tracking_configuration: {
        predefined_metric_specification: { predefined_metric_type: "ASGAverageCPUUtilization" },
        target_value: 55,
      },
    });
  });

  it("publishes the load balancer's URL and checks that every machine is in rotation with the release", () => {
    expect(parsed.output.url.value).toMatch(/^http:\/\/\$\{aws_lb\.Group_LoadBalancer_[0-9A-F]+\.dns_name\}$/);
    const [[, check]] = checks(parsed, "HealthCheck");
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-machines 3 --expect-release");
    expect(check.provisioner[0]["local-exec"].command).toContain("--timeout 2160");
  });
});

describe("vm-pm2-do with vm.machines 3 (Droplets behind a DigitalOcean Load Balancer)", () => {
  const { parsed } = synthDo({ vm: { machines: 3 } });

  it("keeps its resource addresses, providers and outputs (a renamed address replaces the resource)", () => {
    expect(inventory(parsed)).toMatchSnapshot();
  });

  it("health-checks the ready path and admits HTTP to the Droplets from the load balancer only", () => {
    expect(only(parsed.resource, "digitalocean_loadbalancer")).toMatchObject({
      healthcheck: { protocol: "http", port: 80, path: "/ready" },
      http_idle_timeout_seconds: 60,
      enable_backend_keepalive: true,
    });
    expect(only(parsed.resource, "digitalocean_firewall").inbound_rule).toEqual([
      {
        protocol: "tcp",
        port_range: "80",
        source_load_balancer_uids: [expect.stringContaining("digitalocean_loadbalancer.Group_LoadBalancer_")],
      },
    ]);
    // So the balancer's X-Forwarded-Proto reaches the app from the region's VPC (private ranges) only.
    const droplets = parsed.resource.digitalocean_droplet as Record<string, { user_data: string }>;
    for (const droplet of Object.values(droplets)) {
      expect(droplet.user_data).toContain(
        "geo $nodescale_hello_node_from_balancer {\\n    default 0;\\n    10.0.0.0/8 1;\\n    172.16.0.0/12 1;\\n    192.168.0.0/16 1;\\n}",
      );
    }
  });

  it("replaces the Droplets one at a time: each waits until the one before is in rotation with the release", () => {
    const droplets = Object.entries(parsed.resource.digitalocean_droplet);
    expect(droplets).toHaveLength(3);
    const inRotation = checks(parsed, "Group_InRotation");
    expect(inRotation).toHaveLength(3);
    droplets.forEach(([, droplet], i) => {
      expect(droplet.lifecycle).toEqual({ create_before_destroy: true });
      expect(droplet.name).toMatch(new RegExp(`^hello-node-${i + 1}-[0-9a-f]{8}$`));
      if (i > 0) expect(droplet.depends_on).toEqual([`terraform_data.${inRotation[i - 1][0]}`]);
      const exec = inRotation[i][1].provisioner[0]["local-exec"];
      expect(exec.command).toContain('--wait-for-machine "$NODESCALE_MACHINE"');
      expect(exec.environment.NODESCALE_MACHINE).toBe(droplet.name);
    });
    const [[, check]] = checks(parsed, "HealthCheck");
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-machines 3 --expect-release");
  });
});

describe("VM host constructs used directly", () => {
  const spec = parseConfig({}).spec;

  it.each([
    ["Ec2NodeHost", (scope: Construct) => new Ec2NodeHost(scope, "Host", { spec, bundle, sshCidrs: ["::/1", "8000::/1"] })],
    ["DropletNodeHost", (scope: Construct) => new DropletNodeHost(scope, "Host", { spec, bundle, sshCidrs: ["::/1", "8000::/1"] })],
  ])("%s refuses SSH open to the world however the list spells it, quoting the value", (owner, build) => {
    expect(() => Testing.synthScope((scope) => void build(scope))).toThrow(
      new Error(
        `${owner} sshCidrs: ["::/1","8000::/1"] is not allowed: covers every IPv6 address: SSH must not be open to the whole internet`,
      ),
    );
  });

  it("Ec2NodeHost refuses a VPC without its subnet", () => {
    expect(() => Testing.synthScope((scope) => void new Ec2NodeHost(scope, "Host", { spec, bundle, vpcId: "vpc-0abc1234" }))).toThrow(
      new Error(
        'Ec2NodeHost vpcId/subnetId: {"vpcId":"vpc-0abc1234"} is not allowed: give both (an existing VPC and its public subnet) or neither',
      ),
    );
  });
});

describe("secrets on the VM stacks", () => {
  const parameter = "ssm:/orders/db-password";
  const managed = "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf";

  it("lets an EC2 machine's role read exactly the referenced parameter and secret, nothing else", () => {
    const { parsed } = synthAws({ service: { secrets: { DB_PASSWORD: parameter, API_KEY: managed } } });
    const documents = Object.entries(parsed.data.aws_iam_policy_document).filter(([k]) => k.includes("ReadSecrets"));
    expect(documents).toHaveLength(1);
    expect(documents[0][1].statement).toEqual([
      {
        actions: ["ssm:GetParameter"],
        resources: [
          expect.stringMatching(
            /^arn:\$\{data\.aws_partition\.[\w]+\.partition\}:ssm:\$\{data\.aws_region\.[\w]+\.region\}:\$\{data\.aws_caller_identity\.[\w]+\.account_id\}:parameter\/orders\/db-password$/,
          ),
        ],
      },
      { actions: ["secretsmanager:GetSecretValue"], resources: [managed.slice("secretsmanager:".length)] },
    ]);
    expect(JSON.stringify(documents[0][1])).not.toContain("*");
  });

  it("reads them at boot and at every rollout into a root-only file, never as an argument, and re-reads on every deploy", () => {
    const { stack, parsed } = synthAws({ service: { secrets: { DB_PASSWORD: parameter, API_KEY: managed } } });
    const script = stack.host?.userData ?? "";
    expect(script).toContain(
      `NODESCALE_SECRET_DB_PASSWORD="$(aws ssm get-parameter --region "\${region}" --with-decryption --name '/orders/db-password' --query Parameter.Value --output text)"`,
    );
    expect(script).toContain(
      "aws secretsmanager get-secret-value --region 'eu-west-1' --secret-id 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf'",
    );
    expect(script).toContain("( umask 077; /usr/local/bin/node -e");
    expect(script).toContain('"secretsFile":"/etc/nodescale/secrets.json"');
    expect(shellcheck(script)).toBe("");
    const association = rollout(parsed) as { parameters: { commands: string } };
    expect(association.parameters.commands).toMatch(/ # deploy \$\{timestamp\(\)\}$/);
  });

  it("stops the EC2 plan for an env: reference, whose value would travel in user data", () => {
    const { parsed, stack } = synthAws({ service: { secrets: { TOKEN: "env:ORDERS_TOKEN" } } });
    const instance = only(parsed.resource, "aws_instance") as { lifecycle: { precondition: { error_message: string }[] } };
    expect(instance.lifecycle.precondition[0].error_message).toBe(
      "Ec2NodeHost reads secrets through its role (ssm: or secretsmanager:), never from user data: service.secrets.TOKEN is env:ORDERS_TOKEN",
    );
    expect(stack.host?.userData).not.toContain("ORDERS_TOKEN");
  });

  it("stops the DigitalOcean plan for secrets a Droplet cannot be given, naming why, and puts none in the user data", () => {
    process.env.ORDERS_TOKEN = "never-in-user-data-77";
    try {
      const { parsed, json } = synthDo({ service: { secrets: { TOKEN: "env:ORDERS_TOKEN", DB_PASSWORD: parameter } } });
      expect(json).not.toContain("never-in-user-data-77");
      const droplet = only(parsed.resource, "digitalocean_droplet") as { lifecycle: { precondition: { error_message: string }[] } };
      expect(droplet.lifecycle.precondition[0].error_message).toBe(
        "DropletNodeHost cannot be given service.secrets.TOKEN (env:ORDERS_TOKEN), service.secrets.DB_PASSWORD (ssm:/orders/db-password): a Droplet has no AWS role to read ssm:/secretsmanager: with, and env: values travel only over SSH (vm.digitalocean.deployKey), never in user data. Deploy with vm-pm2 (EC2), eks, doks or local, or give env: references with a deploy key.",
      );
    } finally {
      delete process.env.ORDERS_TOKEN;
    }
  });

  it("sends env: secrets over the SSH channel with a deploy key: names in the push, values only in the shell, every deploy", () => {
    process.env.ORDERS_TOKEN = "only-in-the-shell-41";
    try {
      const raw = {
        service: { secrets: { TOKEN: "env:ORDERS_TOKEN" } },
        vm: { digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: DEPLOY_KEY } },
      };
      const { parsed, json } = synthDo(raw);
      expect(json).not.toContain("only-in-the-shell-41");
      const droplet = only(parsed.resource, "digitalocean_droplet");
      expect(droplet).not.toHaveProperty("lifecycle.precondition");
      const push = Object.entries(parsed.resource.terraform_data).find(([k]) => k.startsWith("Host_Release_Push"))?.[1] as {
        triggers_replace: Record<string, string>;
        provisioner: Exec[];
      };
      expect(push.provisioner[0]["local-exec"].environment.NODESCALE_SECRETS).toBe("TOKEN=ORDERS_TOKEN");
      expect(push.triggers_replace.secrets).toBe("${timestamp()}");
    } finally {
      delete process.env.ORDERS_TOKEN;
    }
  });
});

describe("EC2 user data", () => {
  it("leaves room under EC2's 16 KiB (gzipped) with every feature on: secrets, a domain, limits, fork mode", () => {
    const secrets = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`SECRET_${i}`, `ssm:/orders/production/secret-${i}`]));
    for (const machines of [1, 2]) {
      const { stack } = synthAws({
        service: { name: "orders-api", workers: 4, secrets, domain: "orders.example.com" },
        vm: { mode: "fork", machines },
      });
      const script = stack.host?.userData ?? stack.group?.userData ?? "";
      expect(gzipSync(Buffer.from(script), { level: 9 }).length).toBeLessThan(16 * 1024 - 2048);
    }
  });

  it("ships the machine agent with its comment lines left out and its code unchanged", () => {
    const shipped = machineAgentSource();
    const original = readFileSync(join(ROOT, "templates", "vm", "machine-agent.js"), "utf8");
    expect(shipped).not.toMatch(/^\s*\/\//m);
    expect(shipped.length).toBeLessThan(original.length);
    // Same exports, when loaded as a module.
    const file = join(tempDir("nodescale-agent-"), "agent.js");
    writeFileSync(file, shipped);
    try {
      expect(Object.keys(require(file)).sort()).toEqual(Object.keys(require(join(ROOT, "templates", "vm", "machine-agent.js"))).sort());
    } finally {
      rmSync(join(file, ".."), { recursive: true, force: true });
    }
  });
});

describe("service.domain on the VM stacks", () => {
  const domain = "orders.example.com";

  it("ends TLS at the ALB with a DNS-validated ACM certificate and a TLS 1.3 policy; HTTP only redirects; other hosts get 421", () => {
    const { parsed, stack } = synthAws({ service: { domain }, vm: { machines: 2, aws: { route53ZoneId: "Z0123456789ABCDEFGHIJ" } } });
    expect(only(parsed.resource, "aws_acm_certificate")).toMatchObject({ domain_name: domain, validation_method: "DNS" });
    const listeners = Object.values(parsed.resource.aws_lb_listener) as {
      port: number;
      protocol: string;
      ssl_policy?: string;
      default_action: unknown[];
    }[];
    const http = listeners.find((l) => l.port === 80);
    const https = listeners.find((l) => l.port === 443);
    expect(http?.default_action).toEqual([{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", status_code: "HTTP_301" } }]);
    expect(https).toMatchObject({ protocol: "HTTPS", ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06" });
    expect(https?.default_action).toEqual([
      { type: "fixed-response", fixed_response: { content_type: "text/plain", status_code: "421", message_body: "unknown host\n" } },
    ]);
    expect(only(parsed.resource, "aws_lb_listener_rule")).toMatchObject({ condition: [{ host_header: { values: [domain] } }] });
    const records = Object.values(parsed.resource.aws_route53_record) as Record<string, unknown>[];
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          zone_id: "Z0123456789ABCDEFGHIJ",
          ttl: 60,
          for_each: expect.stringContaining("domain_validation_options"),
        }),
        expect.objectContaining({ name: domain, type: "A" }),
      ]),
    );
    // HSTS from the machines' Nginx, only on what the balancer received over HTTPS (never its plain health checks).
    const script = stack.group?.userData ?? "";
    expect(script).toContain(
      'map $nodescale_hello_node_forwarded_proto $nodescale_hello_node_hsts {\\n    https   \\"max-age=63072000\\";',
    );
    // The ALB's X-Forwarded-Proto reaches the app from the VPC (where the ALB's nodes are) only.
    expect(script).toContain("geo $nodescale_hello_node_from_balancer {\\n    default 0;\\n    10.30.0.0/16 1;\\n}");
    expect(script).toContain("proxy_set_header X-Forwarded-Proto $nodescale_hello_node_forwarded_proto;");
    expect(script).toContain("server_name orders.example.com;");
    expect(script).toContain('return 421 \\"unknown host\\\\n\\";');
    expect(parsed.output.url.value).toBe(`https://${domain}`);
    const [[, check]] = checks(parsed, "HealthCheck");
    expect(check.provisioner[0]["local-exec"].command).toContain('--host "$NODESCALE_HOST"');
    expect(check.provisioner[0]["local-exec"].environment).toMatchObject({
      NODESCALE_URL: expect.stringMatching(/^https:\/\/\$\{aws_lb\..+\.dns_name\}$/),
      NODESCALE_HOST: domain,
    });
  });

  it("without a hosted zone, outputs the validation records to create", () => {
    const { parsed } = synthAws({ service: { domain }, vm: { machines: 2 } });
    expect(parsed.resource.aws_route53_record).toBeUndefined();
    expect(parsed.output.certificate_validation.value).toMatch(/aws_acm_certificate\..+\.domain_validation_options/);
  });

  it("ends TLS at the DigitalOcean Load Balancer with a certificate DigitalOcean renews, and redirects HTTP", () => {
    const { parsed } = synthDo({ service: { domain }, vm: { machines: 2 } });
    expect(only(parsed.resource, "digitalocean_certificate")).toMatchObject({ type: "lets_encrypt", domains: [domain] });
    const lb = only(parsed.resource, "digitalocean_loadbalancer") as {
      forwarding_rule: Record<string, unknown>[];
      redirect_http_to_https: boolean;
    };
    expect(lb.redirect_http_to_https).toBe(true);
    expect(lb.forwarding_rule[1]).toMatchObject({ entry_port: 443, entry_protocol: "https", target_port: 80, target_protocol: "http" });
    const inRotation = checks(parsed, "Group_InRotation1")[0][1];
    expect(inRotation.provisioner[0]["local-exec"].environment).toMatchObject({ NODESCALE_HOST: domain });
  });

  it("ends TLS on one EC2 machine with its own Let's Encrypt certificate, and checks HTTPS for the domain", () => {
    const { stack, parsed } = synthAws({ service: { domain }, vm: { aws: { route53ZoneId: "Z0123456789ABCDEFGHIJ" } } });
    expect(parsed.output.url.value).toBe(`https://${domain}`);
    const check = checks(parsed, "HealthCheck")[0][1].provisioner[0]["local-exec"];
    expect(check.environment.NODESCALE_HOST).toBe(domain);
    expect(check.environment.NODESCALE_URL).toMatch(/^https:\/\/\$\{aws_eip\.Host_Eip_[A-Z0-9]+\.public_ip\}$/);
    // No refusal: the plan goes on.
    const instance = only(parsed.resource, "aws_instance") as { lifecycle: Record<string, unknown> };
    expect(instance.lifecycle.precondition).toBeUndefined();
    // certbot, the certificate script with its timer, and Nginx on 443 for the domain only.
    const script = stack.host?.userData ?? "";
    expect(script).toContain("apt-get install -y -q certbot");
    expect(script).toContain("systemctl enable --now certbot.timer nodescale-certificate.timer");
    expect(script).toContain('readonly DOMAIN="orders.example.com"');
    expect(script).toContain('--server "https://acme-v02.api.letsencrypt.org/directory"');
    expect(script).toContain("listen 443 ssl http2;");
    expect(script).toContain("ssl_reject_handshake on;");
    expect(script).toContain("return 308 https://orders.example.com$request_uri;");
    expect(shellcheck(script)).toBe("");
    // The machine keeps its certificate for its replacement: its role reaches exactly that object.
    const policies = Object.values(parsed.data.aws_iam_policy_document) as { statement: { actions: string[]; resources: string[] }[] }[];
    const tlsState = policies.filter((p) => p.statement.some((s) => s.actions.includes("s3:PutObject")));
    expect(tlsState).toHaveLength(1);
    expect(tlsState[0].statement).toEqual([
      { actions: ["s3:GetObject", "s3:PutObject"], resources: [expect.stringMatching(/\.arn\}\/tls\/certificate\.pem$/)] },
    ]);
    // User data is gzipped at synth: the bucket's name comes from an instance tag, never a Terraform reference.
    expect(script).toContain('echo "s3://$(instance_tag NodeScaleBucket)/tls/certificate.pem" > /etc/nodescale/tls/state-uri');
    // Only the chain and key go to the bucket, and come back only as a verified certificate taken over: no certbot
    // configuration, account or hook (test/vm/certificate-state.test.ts runs it).
    expect(script).toContain(
      'cat "${LIVE}/fullchain.pem" "${LIVE}/privkey.pem" | aws s3 cp --only-show-errors - "$(cat /etc/nodescale/tls/state-uri)"',
    );
    expect(script).not.toContain("tar -xzf /etc/nodescale/tls/state.tar.gz");
    expect(script).not.toMatch(/-C \/etc\/letsencrypt/);
    expect(script).not.toContain("TfToken");
    expect((instance as unknown as { tags: Record<string, string> }).tags.NodeScaleBucket).toMatch(
      /^\$\{aws_s3_bucket\.Host_Releases_Bucket_\w+\.bucket\}$/,
    );
    expect(only(parsed.resource, "aws_route53_record")).toMatchObject({ name: domain, type: "A", zone_id: "Z0123456789ABCDEFGHIJ" });
  });

  it("takes another ACME directory and an account e-mail, and refuses an ACME directory that is not https", () => {
    const staging = "https://acme-staging-v02.api.letsencrypt.org/directory";
    const script = synthAws({ service: { domain }, vm: { acmeServer: staging, acmeEmail: "ops@example.com" } }).stack.host?.userData;
    expect(script).toContain(`--server "${staging}"`);
    expect(script).toContain("--email ops@example.com");
    expect(() => parseConfig({ vm: { acmeServer: "http://acme.internal/directory" } })).toThrow(
      `vm.acmeServer: "http://acme.internal/directory" is not allowed: must be an https URL of an ACME directory, such as Let's Encrypt's`,
    );
  });

  it("ends TLS on one Droplet with a deploy key, whose replacement takes the certificate over through the reserved IP", () => {
    const { stack, parsed } = synthDo({
      service: { domain },
      vm: { acmeEmail: "ops@example.com", digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: DEPLOY_KEY } },
    });
    expect(parsed.output.url.value).toBe(`https://${domain}`);
    const droplet = only(parsed.resource, "digitalocean_droplet") as { lifecycle: Record<string, unknown> };
    expect(droplet.lifecycle.precondition).toBeUndefined();
    const script = stack.host?.userData.script ?? "";
    expect(script).toContain("systemctl enable --now certbot.timer nodescale-certificate.timer");
    expect(script).toContain("--email ops@example.com");
    expect(script).toContain('readonly TLS_DOMAIN="orders.example.com"');
    expect(script).toContain("listen 443 ssl http2;");
    expect(shellcheck(script)).toBe("");
    const push = checks(parsed, "Host_Release_Push")[0][1].provisioner[0]["local-exec"];
    expect(push.environment.NODESCALE_TLS_FROM).toMatch(/^\$\{digitalocean_reserved_ip\.Host_ReservedIp_\w+\.ip_address\}$/);
    const check = checks(parsed, "HealthCheck")[0][1].provisioner[0]["local-exec"];
    expect(check.environment.NODESCALE_HOST).toBe(domain);
  });

  it("stops the plan of one Droplet with a domain and no deploy key, saying why and what to do instead", () => {
    const droplet = only(synthDo({ service: { domain } }).parsed.resource, "digitalocean_droplet") as {
      lifecycle: { precondition: { error_message: string }[] };
    };
    expect(droplet.lifecycle.precondition.map((p) => p.error_message)).toEqual([
      "DropletNodeHost cannot serve service.domain orders.example.com over HTTPS without a gap: without a deploy key a replacement Droplet (one per release) could not take over the certificate of the one it replaces. Set vm.digitalocean.deployKey (releases and the certificate travel over SSH), set vm.machines to 2 or more (the DigitalOcean load balancer ends TLS), or leave service.domain unset for HTTP on the Droplet's address.",
    ]);
  });
});

describe("alarms on AWS", () => {
  it("watches a group's 5xx (balancer and machines), unhealthy targets and CPU, mailed through an encrypted topic", () => {
    const { parsed } = synthAws({ vm: { machines: 2, alertEmail: "ops@example.com" } });
    const alarms = all(parsed.resource, "aws_cloudwatch_metric_alarm") as {
      metric_name: string;
      dimensions: Record<string, string>;
      alarm_actions: string[];
    }[];
    expect(alarms.map((a) => a.metric_name).sort()).toEqual([
      "CPUUtilization",
      "HTTPCode_ELB_5XX_Count",
      "HTTPCode_Target_5XX_Count",
      "UnHealthyHostCount",
    ]);
    const unhealthy = alarms.find((a) => a.metric_name === "UnHealthyHostCount");
    expect(unhealthy?.dimensions.TargetGroup).toMatch(/aws_lb_target_group\..+\.arn_suffix/);
    expect(unhealthy?.dimensions.LoadBalancer).toMatch(/aws_lb\..+\.arn_suffix/);
    expect(alarms.every((a) => a.alarm_actions[0].includes("aws_sns_topic."))).toBe(true);
    expect(only(parsed.resource, "aws_sns_topic")).toMatchObject({ kms_master_key_id: "alias/aws/sns" });
    expect(only(parsed.resource, "aws_sns_topic_subscription")).toMatchObject({ protocol: "email", endpoint: "ops@example.com" });
  });

  it("watches one machine's CPU and status checks; without an address, the alarms notify no one", () => {
    const { parsed } = synthAws();
    const alarms = all(parsed.resource, "aws_cloudwatch_metric_alarm") as { metric_name: string; alarm_actions?: string[] }[];
    expect(alarms.map((a) => a.metric_name).sort()).toEqual(["CPUUtilization", "StatusCheckFailed"]);
    expect(alarms.every((a) => a.alarm_actions === undefined)).toBe(true);
    expect(parsed.resource.aws_sns_topic).toBeUndefined();
  });
});

describe("logs in CloudWatch (EC2)", () => {
  it("ships PM2's and Nginx's logs through the CloudWatch agent (installed and configured by SSM), the role writing only there", () => {
    const { parsed, stack } = synthAws({ vm: { aws: { logRetentionDays: 90 } } });
    expect(only(parsed.resource, "aws_cloudwatch_log_group")).toMatchObject({ name: "/nodescale/hello-node", retention_in_days: 90 });
    const config = JSON.parse(only(parsed.resource, "aws_ssm_parameter").value as string);
    expect(config.logs.logs_collected.files.collect_list.map((f: { file_path: string }) => f.file_path)).toEqual([
      "/var/log/nodescale/*.log",
      "/var/log/nginx/access.log",
      "/var/log/nginx/error.log",
    ]);
    const associations = all(parsed.resource, "aws_ssm_association") as { name: string; targets: unknown[] }[];
    expect(associations.map((a) => a.name).sort()).toEqual([
      "AWS-ConfigureAWSPackage",
      "AWS-RunShellScript",
      "AmazonCloudWatch-ManageAgent",
    ]);
    expect(associations.find((a) => a.name === "AmazonCloudWatch-ManageAgent")?.targets).toEqual([
      { key: "tag:nodescale:service", values: ["hello-node"] },
    ]);
    const write = Object.entries(parsed.data.aws_iam_policy_document).find(([k]) => k.startsWith("Logs_WriteLogs"))?.[1] as {
      statement: { actions: string[]; resources: string[] }[];
    };
    expect(write.statement[0].resources).toEqual([expect.stringMatching(/^\$\{aws_cloudwatch_log_group\..+\.arn\}:\*$/)]);
    expect(write.statement[1]).toEqual({ actions: ["ssm:GetParameter"], resources: [expect.stringMatching(/aws_ssm_parameter\..+\.arn/)] });
    // No download URL or agent settings in user data: SSM brings both.
    expect(stack.host?.userData).not.toContain("cloudwatch");
    expect(() => parseConfig({ vm: { aws: { logRetentionDays: 45 } } })).toThrow(
      "vm.aws.logRetentionDays: 45 is not allowed: must be one of CloudWatch's retention periods: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    );
  });
});
