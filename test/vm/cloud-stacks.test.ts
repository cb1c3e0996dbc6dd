import { gunzipSync } from "node:zlib";
import { type Construct, Testing } from "../../constructs/cdk";
import { DropletNodeHost } from "../../constructs/vm/droplet-host";
import { Ec2NodeHost } from "../../constructs/vm/ec2-host";
import { parseConfig } from "../../stacks/config";
import { VmPm2Stack } from "../../stacks/vm-pm2";
import { VmPm2DoStack } from "../../stacks/vm-pm2-do";
import { fixtureBundle } from "../helpers/fixtures";
import { shellcheck } from "../helpers/tools";

type Resources = Record<string, Record<string, Record<string, unknown>>>;
interface Synth {
  resource: Resources;
  data: Resources;
  output: Record<string, { value: string }>;
  terraform?: { backend?: Record<string, Record<string, unknown>> };
}

const bundle = fixtureBundle();

function only(resources: Resources, type: string): Record<string, unknown> {
  const all = Object.values(resources[type] ?? {});
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0];
}

function synthAws(raw: unknown = {}) {
  const app = Testing.app();
  const stack = new VmPm2Stack(app, "vm-pm2", { loaded: parseConfig(raw), bundle });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

function synthDo(raw: unknown = {}) {
  const app = Testing.app();
  const stack = new VmPm2DoStack(app, "vm-pm2-do", { loaded: parseConfig(raw), bundle });
  const json = Testing.synth(stack, true);
  return { stack, json, parsed: JSON.parse(json) as Synth };
}

describe("vm-pm2 (AWS EC2)", () => {
  const { json, parsed, stack } = synthAws({ service: { workers: 2 }, vm: { aws: { sshCidrs: ["203.0.113.7/32"] } } });
  const ingress = Object.values(parsed.resource.aws_vpc_security_group_ingress_rule);

  it("matches the snapshot", () => {
    expect(json).toMatchSnapshot();
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
    expect(instance.lifecycle).toEqual({ ignore_changes: ["ami"] });
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

  it("gives the instance SSM access and read access to its releases only", () => {
    expect(only(parsed.resource, "aws_iam_role_policy_attachment").policy_arn).toBe("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
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
    const object = only(parsed.resource, "aws_s3_object");
    expect(object).toMatchObject({ key: `releases/${bundle.sha256}.tar.gz`, source_hash: bundle.sha256, server_side_encryption: "AES256" });
    const instance = only(parsed.resource, "aws_instance");
    expect((instance.tags as Record<string, string>).NodeScaleBundleSha256).toBe(bundle.sha256);
  });

  it("renders gzipped user data that installs Nginx and PM2 and passes shellcheck", () => {
    const instance = only(parsed.resource, "aws_instance");
    const script = gunzipSync(Buffer.from(instance.user_data_base64 as string, "base64")).toString();
    expect(script).toBe(stack.host.userData);
    expect(script).toContain("apt-get install -y -q nginx");
    expect(script).toContain('"exec_mode": "cluster"');
    expect(script).toContain("instance_tag NodeScaleBundle)");
    expect(shellcheck(script)).toBe("");
  });

  it("rolls a new release out in place through SSM, re-running the provision script", () => {
    const association = only(parsed.resource, "aws_ssm_association");
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
    const check = Object.values(parsed.resource.terraform_data)[0] as { provisioner: { "local-exec": { command: string } }[] };
    expect(check.provisioner[0]["local-exec"].command).toContain("--expect-workers 2");
  });

  it("uses an existing VPC when both vpcId and subnetId are given", () => {
    const existing = synthAws({ vm: { aws: { vpcId: "vpc-0abc1234", subnetId: "subnet-0abc1234" } } }).parsed;
    expect(existing.resource.aws_vpc).toBeUndefined();
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
  const { json, parsed, stack } = synthDo({ vm: { digitalocean: { sshCidrs: ["198.51.100.0/24"] } } });

  it("matches the snapshot", () => {
    expect(json).toMatchSnapshot();
  });

  it("runs Ubuntu LTS with monitoring and tags", () => {
    expect(only(parsed.resource, "digitalocean_droplet")).toMatchObject({
      image: "ubuntu-24-04-x64",
      monitoring: true,
      tags: ["nodescale-hello-node", "nodescale"],
    });
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
    expect(userData.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{")).toBe(stack.host.userData);
    expect(userData).not.toMatch(/(^|[^$])\$\{/);
    expect(stack.host.userData).toContain(`BUNDLE_SHA256="${bundle.sha256}"`);
    expect(shellcheck(stack.host.userData)).toBe("");
  });

  it("keeps the address on a reserved IP and outputs the url", () => {
    const assignment = only(parsed.resource, "digitalocean_reserved_ip_assignment");
    expect(assignment.droplet_id).toMatch(/^\$\{digitalocean_droplet\.Host_Droplet_[0-9A-F]+\.id\}$/);
    expect(parsed.output.url.value).toMatch(/^http:\/\/\$\{digitalocean_reserved_ip\.Host_ReservedIp_[0-9A-F]+\.ip_address\}$/);
  });

  it("refuses an app bundle too large for the 64 KiB user data", () => {
    const big = { ...bundle, data: Buffer.alloc(60 * 1024, 1) };
    const app = Testing.app();
    expect(() => new VmPm2DoStack(app, "vm-pm2-do", { loaded: parseConfig({}), bundle: big })).toThrow(
      /^DropletNodeHost user data: \d+ bytes is over DigitalOcean's limit of 65536 bytes; the app bundle is too large to send inline$/,
    );
  });
});

describe("VM host constructs used directly", () => {
  const spec = parseConfig({}).spec;

  it.each([
    ["Ec2NodeHost", (scope: Construct) => new Ec2NodeHost(scope, "Host", { spec, bundle, sshCidrs: ["::/0"] })],
    ["DropletNodeHost", (scope: Construct) => new DropletNodeHost(scope, "Host", { spec, bundle, sshCidrs: ["::/0"] })],
  ])("%s refuses SSH open to the world, quoting the value", (owner, build) => {
    expect(() => Testing.synthScope((scope) => void build(scope))).toThrow(
      new Error(`${owner} sshCidrs: "::/0" is not allowed: SSH must not be open to the whole internet`),
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
