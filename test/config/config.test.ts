import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig, resolveApp } from "../../stacks/config";
import { CONFIG_DESCRIPTIONS } from "../../stacks/config-descriptions";
import { configJsonSchema, schemaProperties } from "../../stacks/config-json-schema";
import { tempDir as sharedTempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

function problems(raw: unknown): readonly string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const tempDir = () => sharedTempDir("nodescale-config-");

describe("nodescale.config.json validation", () => {
  it("fills every default from an empty file", () => {
    const { config, spec } = parseConfig({});
    expect(config.local.port).toBe(8080);
    expect(config.vm).toMatchObject({ mode: "cluster", aws: { sshCidrs: [] }, digitalocean: { sshCidrs: [] } });
    expect(config.kubernetes).toMatchObject({ minReplicas: 2, maxReplicas: 10, targetCpuPercent: 70 });
    expect(config.kubernetes.eks).toMatchObject({ natGateways: "single", publicAccessCidrs: [] });
    expect(spec.name).toBe("hello-node");
  });

  it("reports several problems together, each naming the field, the value and what is allowed", () => {
    expect(problems({ service: { port: 80, workers: 0 }, kubernetes: { targetCpuPercent: 150 } })).toEqual([
      "service.port: 80 is not allowed: must be a whole number 1024-65535 (the port the Node process listens on; ports below 1024 need root)",
      'service.workers: 0 is not allowed: must be "auto" (one per CPU core) or a whole number 1-64',
      "kubernetes.targetCpuPercent: 150 is not allowed: must be a whole number 1-100 (average CPU utilisation the autoscaler aims at)",
    ]);
  });

  it("accepts a supported Node.js LTS major and lists the supported ones for any other", () => {
    expect(parseConfig({ service: { nodeVersion: 24 } }).spec.nodeRelease.version).toMatch(/^24\.\d+\.\d+$/);
    expect(parseConfig({}).spec.nodeVersion).toBe(22);
    expect(problems({ service: { nodeVersion: 20 } })).toEqual([
      "service.nodeVersion: 20 is not allowed: must be a supported Node.js LTS major: 22, 24",
    ]);
    expect(problems({ service: { nodeVersion: "22" } })).toEqual([
      'service.nodeVersion: "22" is not allowed: must be a supported Node.js LTS major: 22, 24',
    ]);
  });

  it("takes a Droplet deploy key only with an address that may reach SSH, and only a public key line", () => {
    const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy2gd0cUIyZ3kx8p2zLXlUqMWfVh0l0t0gJ7kz9y8Lq deploy@ci";
    expect(problems({ vm: { digitalocean: { deployKey: { publicKey, privateKeyFile: "~/.ssh/deploy" } } } })).toEqual([
      "vm.digitalocean.sshCidrs: nothing is not allowed: must name the address you deploy from when vm.digitalocean.deployKey is set: releases are pushed to the Droplets over SSH",
    ]);
    expect(
      problems({
        vm: {
          digitalocean: {
            sshCidrs: ["198.51.100.7/32"],
            deployKey: { publicKey: "-----BEGIN OPENSSH PRIVATE KEY-----", privateKeyFile: "k" },
          },
        },
      }),
    ).toEqual([
      'vm.digitalocean.deployKey.publicKey: "-----BEGIN OPENSSH PRIVATE KEY-----" is not allowed: must be one OpenSSH public key line such as ssh-ed25519 AAAA... (the .pub file; never the private key)',
    ]);
    expect(
      parseConfig({
        vm: { digitalocean: { sshCidrs: ["198.51.100.7/32"], deployKey: { publicKey: `${publicKey}\n`, privateKeyFile: "k" } } },
      }).config.vm.digitalocean.deployKey?.publicKey,
    ).toBe(publicKey);
  });

  it("rejects unknown keys with a did-you-mean", () => {
    expect(problems({ service: { workrs: 2 }, kubernetes: { maxReplica: 3 } })).toEqual([
      'service.workrs: unknown key (did you mean "workers"?); allowed here: name, port, metricsPort, workers, shutdownGraceSeconds, healthPath, readyPath, memoryMiB, cpuMillicores, maxBodySizeMiB, domain, clientLimits, source, start, build, signalsReady, nodeVersion, env, secrets',
      'kubernetes.maxReplica: unknown key (did you mean "maxReplicas"?); allowed here: minReplicas, maxReplicas, targetCpuPercent, preStopSeconds, host, tlsSecretName, restrictEgress, serviceMonitor, egress, cluster, eks, doks',
    ]);
    expect(problems({ servce: {} })[0]).toBe(
      'servce: unknown key (did you mean "service"?); allowed here: $schema, service, local, vm, kubernetes, image, state',
    );
  });

  it("suggests a key that exists one level down when the unknown key was put one level too high", () => {
    const kubernetesKeys =
      "minReplicas, maxReplicas, targetCpuPercent, preStopSeconds, host, tlsSecretName, restrictEgress, serviceMonitor, egress, cluster, eks, doks";
    expect(problems({ kubernetes: { context: "kind-dev" } })).toEqual([
      `kubernetes.context: unknown key (did you mean "kubernetes.cluster.context"?); allowed here: ${kubernetesKeys}`,
    ]);
    // A misspelling one level down too; every place the key exists is named.
    expect(problems({ vm: { region: "nyc3" }, kubernetes: { contxt: "kind-dev" } })).toEqual([
      'vm.region: unknown key (did you mean "vm.aws.region" or "vm.digitalocean.region"?); allowed here: mode, machines, minMachines, maxMachines, clientLimits, nodeMirror, keepReleases, acmeServer, acmeEmail, alertEmail, targetCpuPercent, aws, digitalocean',
      `kubernetes.contxt: unknown key (did you mean "kubernetes.cluster.context"?); allowed here: ${kubernetesKeys}`,
    ]);
    // A key known at its own level is suggested there first; a key known nowhere gets no guess.
    expect(problems({ local: { machine: 2 }, kubernetes: { zzz: 1 } })).toEqual([
      'local.machine: unknown key (did you mean "machines"?); allowed here: port, machines, https, httpsPort, clientLimits',
      `kubernetes.zzz: unknown key; allowed here: ${kubernetesKeys}`,
    ]);
  });

  it.each([
    [["0.0.0.0/0"], "IPv4"],
    [["::/0"], "IPv6"],
    [["0::/0"], "IPv6"],
    [["203.0.113.7/32", "0.0.0.0/1", "128.0.0.0/1"], "IPv4"],
    [["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1", "::/1", "8000::/1"], "IPv4 and IPv6"],
  ])("refuses SSH open to the whole internet however the list spells it (%j)", (cidrs, families) => {
    const message = `covers every ${families} address, which opens SSH to the whole internet; list your own addresses (for example your office /32), or none and use SSM`;
    expect(problems({ vm: { aws: { sshCidrs: cidrs }, digitalocean: { sshCidrs: cidrs } } })).toEqual([
      `vm.aws.sshCidrs: ${JSON.stringify(cidrs)} is not allowed: ${message}`,
      `vm.digitalocean.sshCidrs: ${JSON.stringify(cidrs)} is not allowed: ${message}`,
    ]);
  });

  it("accepts lists that leave part of the internet out, and refuses what is not a CIDR", () => {
    expect(() => parseConfig({ vm: { aws: { sshCidrs: ["0.0.0.0/1", "128.0.0.0/2", "2001:db8::/32"] } } })).not.toThrow();
    expect(problems({ vm: { aws: { sshCidrs: ["300.1.2.3/32", "10.0.0.0/33", "::g/64"] } } })).toEqual([
      'vm.aws.sshCidrs.0: "300.1.2.3/32" is not allowed: must be a CIDR such as "203.0.113.7/32"',
      'vm.aws.sshCidrs.1: "10.0.0.0/33" is not allowed: must be a CIDR such as "203.0.113.7/32"',
      'vm.aws.sshCidrs.2: "::g/64" is not allowed: must be a CIDR such as "203.0.113.7/32"',
    ]);
  });

  it("refuses secret and service.env names that change how the machine's programs load or run (LD_PRELOAD ran as root)", () => {
    const rule =
      "changes how the machine's programs load or run, not what the app reads (refused: LD_*, PM2_*, npm_config_*, NPM_CONFIG_*, BASH_FUNC_*, PATH, HOME, NODE_OPTIONS, NODE_PATH, BASH_ENV, ENV, IFS, SHELLOPTS, BASHOPTS, PS4, CDPATH, GCONV_PATH, GETCONF_DIR, GLIBC_TUNABLES, HOSTALIASES, LOCALDOMAIN, LOCPATH, MALLOC_TRACE, NIS_PATH, NLSPATH, RESOLV_HOST_CONF, RES_OPTIONS, TMPDIR, TZDIR); use another name";
    expect(
      problems({
        service: {
          env: { NODE_OPTIONS: "--require /tmp/x.js", PATH: "/tmp", PM2_HOME: "/tmp/pm2", BASH_ENV: "/tmp/x", NODE_ENV: "production" },
          secrets: { LD_PRELOAD: "env:EVIL", npm_config_git: "env:GIT", IFS: "env:IFS_VALUE", DB_PASSWORD: "env:DB" },
        },
      }),
    ).toEqual([
      `service.secrets.LD_PRELOAD: "env:EVIL" is not allowed: the name LD_PRELOAD ${rule}`,
      `service.secrets.npm_config_git: "env:GIT" is not allowed: the name npm_config_git ${rule}`,
      `service.secrets.IFS: "env:IFS_VALUE" is not allowed: the name IFS ${rule}`,
      `service.env.NODE_OPTIONS: "--require /tmp/x.js" is not allowed: the name NODE_OPTIONS ${rule}`,
      `service.env.PATH: "/tmp" is not allowed: the name PATH ${rule}`,
      `service.env.PM2_HOME: "/tmp/pm2" is not allowed: the name PM2_HOME ${rule}`,
      `service.env.BASH_ENV: "/tmp/x" is not allowed: the name BASH_ENV ${rule}`,
    ]);
    // Names that only look alike are the app's own.
    expect(() =>
      parseConfig({ service: { env: { NODE_ENV: "production", PATHS: "a", LDAP_URL: "ldap://x", MY_HOME: "/x" } } }),
    ).not.toThrow();
  });

  it("takes secrets as references only, and says what a reference looks like", () => {
    const rule =
      'must be a reference, never a value: "ssm:/path/to/parameter", "secretsmanager:arn:aws:secretsmanager:<region>:<account>:secret:<name>" or "env:VARIABLE"';
    expect(
      problems({
        service: {
          env: { SHARED: "x" },
          secrets: { DB_PASSWORD: "hunter2", PORT: "env:PORT_VALUE", SHARED: "env:SHARED", TOKEN: "ssm:relative/path" },
        },
      }),
    ).toEqual([
      `service.secrets.DB_PASSWORD: a value of 7 characters (not shown) is not allowed: ${rule}`,
      `service.secrets.TOKEN: "ssm:relative/path" is not allowed: ${rule}`,
      'service.secrets.PORT: "env:PORT_VALUE" is not allowed: is set by NodeScale from the spec (reserved: PORT, HOST, WORKERS, SHUTDOWN_GRACE_SECONDS, KEEP_ALIVE_TIMEOUT_MS, HEADERS_TIMEOUT_MS, NODESCALE_RELEASE, NODESCALE_MACHINE, NODESCALE_APP_HASH, METRICS_PORT, METRICS_SOCKET_DIR)',
      'service.secrets.SHARED: "env:SHARED" is not allowed: is also in service.env: one variable, one source',
    ]);
    const { spec } = parseConfig({
      service: {
        secrets: {
          A: "ssm:/orders/db-password",
          B: "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf",
          C: "env:ORDERS_TOKEN",
        },
      },
    });
    expect(spec.secrets).toEqual({
      A: { kind: "ssm", name: "/orders/db-password" },
      B: { kind: "secretsmanager", arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf" },
      C: { kind: "env", variable: "ORDERS_TOKEN" },
    });
  });

  it("takes an https state endpoint only: state credentials never travel in clear", () => {
    expect(problems({ state: { backend: "s3", bucket: "tf-state", endpoint: "http://nyc3.digitaloceanspaces.com" } })).toEqual([
      'state.endpoint: "http://nyc3.digitaloceanspaces.com" is not allowed: must be an https URL such as https://nyc3.digitaloceanspaces.com',
    ]);
    expect(() =>
      parseConfig({ state: { backend: "s3", bucket: "tf-state", endpoint: "https://nyc3.digitaloceanspaces.com" } }),
    ).not.toThrow();
  });

  it("refuses a public Kubernetes API for every address, however the list spells it", () => {
    expect(problems({ kubernetes: { eks: { publicAccessCidrs: ["0.0.0.0/1", "128.0.0.0/1"] } } })).toEqual([
      'kubernetes.eks.publicAccessCidrs: ["0.0.0.0/1","128.0.0.0/1"] is not allowed: covers every IPv4 address, which opens the Kubernetes API to the whole internet; list the addresses that deploy',
    ]);
  });

  it("checks fields against each other", () => {
    expect(
      problems({
        kubernetes: { minReplicas: 5, maxReplicas: 3 },
        service: { workers: "auto" },
        vm: { mode: "fork" },
        local: { port: 3000 },
      }),
    ).toEqual([
      "kubernetes.minReplicas: 5 is not allowed: must not exceed kubernetes.maxReplicas (3)",
      'service.workers: "auto" is not allowed: must be a number with vm.mode "fork": one port per process needs a fixed count',
      "local.port: 3000 is not allowed: collides with the app's port(s) 3000-3000; pick another",
    ]);
  });

  it("keeps the machine count within its autoscaling bounds, and autoscaling behind a load balancer", () => {
    expect(parseConfig({ vm: { machines: 3, minMachines: 2, maxMachines: 6 } }).config.vm).toMatchObject({
      machines: 3,
      minMachines: 2,
      maxMachines: 6,
    });
    expect(problems({ vm: { machines: 5, maxMachines: 4 } })).toEqual([
      "vm.machines: 5 is not allowed: must lie within vm.minMachines (5) and vm.maxMachines (4)",
    ]);
    expect(problems({ vm: { maxMachines: 4 } })).toEqual([
      "vm.maxMachines: 4 is not allowed: needs vm.machines >= 2: autoscaling runs behind a load balancer, which one machine does not have",
    ]);
    expect(problems({ vm: { machines: 2, aws: { vpcId: "vpc-0abc1234", subnetId: "subnet-0abc1234" } } })).toEqual([
      'vm.aws.vpcId: "vpc-0abc1234" is not allowed: is for one machine; with vm.machines >= 2 NodeScale creates the VPC, its public subnets over two zones and the load balancer',
    ]);
    expect(problems({ local: { machines: 0 } })).toEqual([
      "local.machines: 0 is not allowed: must be a whole number 1-16 (simulated machines; 2 or more run behind a local load balancer)",
    ]);
  });

  it("refuses an image that is not pinned", () => {
    expect(problems({ image: "ghcr.io/acme/api:latest" })).toEqual([
      'image: "ghcr.io/acme/api:latest" is not allowed: must be pinned by a fixed tag or digest (not "latest", not untagged), such as "ghcr.io/acme/api:1.4.2"',
    ]);
    expect(problems({ image: "ghcr.io/acme/api" })).toHaveLength(1);
    expect(parseConfig({ image: "ghcr.io/acme/api:1.4.2" }).config.image).toBe("ghcr.io/acme/api:1.4.2");
  });

  it("reads the file named by NODESCALE_CONFIG and says when it does not exist", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "custom.json"), JSON.stringify({ service: { name: "orders" } }));
    expect(loadConfig({ NODESCALE_CONFIG: "custom.json" }, dir).spec.name).toBe("orders");
    expect(() => loadConfig({ NODESCALE_CONFIG: "missing.json" }, dir)).toThrow(
      `NODESCALE_CONFIG names ${JSON.stringify(join(dir, "missing.json"))}, which does not exist`,
    );
    writeFileSync(join(dir, "nodescale.config.json"), "{ not json");
    expect(() => loadConfig({}, dir)).toThrow(/nodescale\.config\.json: 1 problem\n {2}- is not valid JSON: /);
  });

  it("accepts the project's own default config", () => {
    expect(loadConfig({}, ROOT).spec.workers).toBe(2);
  });

  it("explains every key in the JSON Schema, and describes no key the schema lacks", () => {
    const properties = schemaProperties(configJsonSchema() as Parameters<typeof schemaProperties>[0]);
    expect(properties.filter(([, p]) => typeof p.description !== "string" || p.description === "").map(([path]) => path)).toEqual([]);
    const paths = new Set(properties.map(([path]) => path));
    expect(Object.keys(CONFIG_DESCRIPTIONS).filter((path) => !paths.has(path))).toEqual([]);
    expect(paths.size).toBeGreaterThan(60);
  });

  it("ships a JSON Schema generated from the same source", () => {
    const committed = JSON.parse(readFileSync(join(ROOT, "nodescale.schema.json"), "utf8"));
    expect(committed).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
    expect(committed.properties.service.additionalProperties).toBe(false);
    expect(JSON.parse(readFileSync(join(ROOT, "nodescale.config.json"), "utf8")).$schema).toBe("./nodescale.schema.json");
  });

  it("reports a construct's refusal the same way: one clean line, exit 1", () => {
    const dir = tempDir();
    const file = join(dir, "many-droplets.json");
    // The config allows 100 machines (an Auto Scaling group can run them); a DigitalOcean Load Balancer takes 50.
    writeFileSync(file, JSON.stringify({ vm: { machines: 60 } }));
    const run = spawnSync(process.execPath, [join(ROOT, "dist", "main.js")], {
      env: { ...process.env, NODESCALE_CONFIG: file },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      "nodescale: invalid configuration\nDropletNodeGroup machines: 60 is not allowed: must be a whole number 2-50 (one machine is DropletNodeHost)\n",
    );
  });

  it("makes `cdktf synth` exit 1 with the list of problems and no stack trace", () => {
    const dir = tempDir();
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ service: { port: "80" }, vm: { aws: { sshCidrs: ["0.0.0.0/0"] } } }));
    const run = spawnSync(process.execPath, [join(ROOT, "dist", "main.js")], {
      env: { ...process.env, NODESCALE_CONFIG: file, CDKTF_OUTDIR: join(dir, "cdktf.out") },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      [
        "nodescale: invalid configuration",
        `${file}: 2 problems`,
        '  - service.port: "80" is not allowed: must be a whole number 1024-65535 (the port the Node process listens on; ports below 1024 need root)',
        '  - vm.aws.sshCidrs: ["0.0.0.0/0"] is not allowed: covers every IPv4 address, which opens SSH to the whole internet; list your own addresses (for example your office /32), or none and use SSM',
        "",
      ].join("\n"),
    );
    expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
    // Nothing was synthesized (no manifest, no stack): Terraform has nothing to run.
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    expect(files.map((entry) => entry.name)).toEqual(["bad.json"]);
  });
});

describe("service.source: your own app", () => {
  /** Loads a config file written beside an app folder with this package.json (or none). */
  function appConfig(service: Record<string, unknown>, pkg?: Record<string, unknown>, files: string[] = []) {
    const dir = tempDir();
    mkdirSync(join(dir, "svc"));
    if (pkg) writeFileSync(join(dir, "svc", "package.json"), JSON.stringify(pkg));
    for (const f of files) writeFileSync(join(dir, "svc", f), "");
    const file = join(dir, "nodescale.config.json");
    writeFileSync(file, JSON.stringify({ service: { source: "svc", ...service } }));
    return { dir, file, loaded: loadConfig({ NODESCALE_CONFIG: file }, ROOT) };
  }
  const problemsOf = (run: () => unknown) => {
    try {
      run();
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    throw new Error("expected a ConfigError");
  };

  it("runs the package.json main, relative to the config file, and does not wait for a ready message", () => {
    const { dir, loaded } = appConfig({}, { name: "svc", main: "./src/server.js" });
    const app = resolveApp(loaded, ROOT);
    expect(app.dir).toBe(join(dir, "svc"));
    expect(app.loaded.spec.start).toBe("src/server.js");
    expect(app.loaded.spec.signalsReady).toBe(false);
    expect(resolveApp(parseConfig({}), ROOT).loaded.spec).toMatchObject({ start: "dist/main.js", signalsReady: true });
  });

  it("prefers service.start, and falls back to index.js when package.json has no main", () => {
    expect(resolveApp(appConfig({ start: "bin/www.js" }, { name: "svc", main: "x.js" }).loaded, ROOT).loaded.spec.start).toBe("bin/www.js");
    expect(resolveApp(appConfig({}, { name: "svc" }, ["index.js"]).loaded, ROOT).loaded.spec.start).toBe("index.js");
  });

  it("names the field and the folder when the app cannot be found or has no entry", () => {
    const missing = appConfig({ source: "nowhere" }, { name: "svc" });
    expect(problemsOf(() => resolveApp(missing.loaded, ROOT))).toEqual([
      `service.source: "nowhere" does not exist (resolved to ${join(missing.dir, "nowhere")})`,
    ]);
    const bare = appConfig({});
    expect(problemsOf(() => resolveApp(bare.loaded, ROOT))).toEqual([
      `service.source: ${join(bare.dir, "svc")} has no package.json; it must be a Node.js app's folder`,
    ]);
    const noMain = appConfig({}, { name: "svc" });
    expect(problemsOf(() => resolveApp(noMain.loaded, ROOT))).toEqual([
      `service.start: ${join(noMain.dir, "svc", "package.json")} has no "main" and there is no index.js; name the file node runs, such as "dist/server.js"`,
    ]);
    expect(problems({ service: { start: "../outside.js", build: "rm -rf /" } })).toEqual([
      'service.start: "../outside.js" is not allowed: must be a relative .js/.cjs/.mjs path inside the app folder, such as "dist/server.js" (no "..")',
      'service.build: "rm -rf /" is not allowed: must be the name of an npm script in the app\'s package.json, such as "build", or false for none',
    ]);
  });

  it("makes `cdktf synth` exit 1 with the packer's reason and no stack trace when the app cannot be packed", () => {
    const { dir, file } = appConfig({}, { name: "svc", main: "server.js" }, ["server.js"]);
    const run = spawnSync(process.execPath, [join(ROOT, "dist", "main.js")], {
      env: { ...process.env, NODESCALE_CONFIG: file },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `nodescale: cannot package the app\nthe app in ${join(dir, "svc")} has no package-lock.json (or npm-shrinkwrap.json): a release installs exactly the locked dependencies; run "npm install" there and commit the lock file\n`,
    );
  });
});
