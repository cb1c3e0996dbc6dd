import { spawnSync } from "node:child_process";
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { fillTemplate, TemplateError } from "../../constructs/template";
import { nginxWorkerUser } from "../../constructs/vm/local-target";
import { ensureLocalTls, localTlsFiles } from "../../constructs/vm/local-tls";
import { machineAgent } from "../../constructs/vm/machine-agent";
import { renderMachinePlan } from "../../constructs/vm/machine-plan";
import { processPlan } from "../../constructs/vm/plan";
import {
  pm2StopTimeoutSeconds,
  renderLogRotation,
  renderNginxRestartDropIn,
  renderPm2Unit,
  renderProvisionScript,
  renderVmMachinePlan,
} from "../../constructs/vm/provision";
import {
  pm2Apps,
  renderLoadBalancerSite,
  renderMachineServers,
  renderNginxMain,
  renderNginxSite,
  SECURITY_HEADERS,
} from "../../constructs/vm/render";
import { tempDir } from "../helpers/fixtures";
import { NGINX_TEST_UPSTREAM, nginxTest, shellcheck, systemdSecurity, systemdVerify, systemdVerifyDropIn } from "../helpers/tools";

const spec = NodeServiceSpec.parse({ name: "orders-api", port: 4000, workers: 3, shutdownGraceSeconds: 12, maxBodySizeMiB: 25 });
const cluster = processPlan(spec, "cluster");
// The upstream lines as the machine agent itself writes them at each deploy.
const { upstreamServers } = machineAgent;
const fork = processPlan(spec, "fork");
const site = (plan = cluster) =>
  renderNginxSite(spec, plan, { listen: ["127.0.0.1:8080"], accessLog: "off", upstreamFile: NGINX_TEST_UPSTREAM });

describe("Nginx site template", () => {
  it("takes the upstream's servers from the file the machine agent writes, and retries each once", () => {
    const text = site();
    expect(text).toMatchSnapshot();
    expect(text).toContain(`    include ${NGINX_TEST_UPSTREAM};`);
    expect(text).toContain("# The app's ports (4000), written by the NodeScale machine agent");
    expect(text).toContain("proxy_next_upstream_tries 0;");
    expect(text).toContain("proxy_next_upstream_timeout 10s;");
    expect(site(fork)).toContain("# The app's ports (4000, 4001, 4002)");
  });

  it("lists one port twice, so a cluster reload can retry, and every fork port once", () => {
    expect(upstreamServers("127.0.0.1", [4000])).toBe("server 127.0.0.1:4000 max_fails=0;\nserver 127.0.0.1:4000 max_fails=0;\n");
    expect(upstreamServers("127.0.1.2", [4000, 4001])).toBe("server 127.0.1.2:4000 max_fails=0;\nserver 127.0.1.2:4001 max_fails=0;\n");
  });

  it("keeps upstream connections alive and forwards what the app needs to know", () => {
    const text = site();
    for (const line of [
      "keepalive 16;",
      "keepalive_timeout 60s;",
      "keepalive_timeout 65s;",
      "proxy_http_version 1.1;",
      "proxy_set_header Connection $nodescale_orders_api_connection;",
      "proxy_set_header Upgrade $http_upgrade;",
      "proxy_set_header Host $host;",
      "proxy_set_header X-Real-IP $remote_addr;",
      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "proxy_set_header X-Forwarded-Proto $scheme;",
      "proxy_next_upstream error timeout;",
      "server_tokens off;",
      "client_max_body_size 25m;",
      "keepalive_requests 100000;",
    ]) {
      expect(text).toContain(line);
    }
  });

  it.each([
    ["cluster", cluster, upstreamServers("127.0.0.1", [4000])],
    ["fork", fork, upstreamServers("127.0.0.1", [4000, 4001, 4002])],
    ["a deploy's bridge (old ports, new ports and a canary)", fork, upstreamServers("127.0.0.1", [4000, 4001, 4002, 5000, 41234])],
  ])("passes nginx -t in %s", (_, plan, servers) => {
    const verdict = nginxTest(site(plan), servers);
    expect(verdict.output).toContain("test is successful");
    expect(verdict.status).toBe(0);
  });

  it("passes nginx -t as the site of one VM ending TLS for its domain (IPv4 and IPv6, 80 and 443)", () => {
    const [vmSite] = renderVmMachinePlan(spec, cluster, { machineTls: { domain: "orders.example.com" } }).files;
    for (const line of [
      "    listen 443 ssl http2;",
      "    listen [::]:443 ssl http2;",
      "    listen 443 ssl default_server;",
      "    listen [::]:80 default_server;",
    ]) {
      expect(vmSite.content).toContain(line);
    }
    const dir = tempDir("nodescale-vm-tls-");
    const files = localTlsFiles(dir);
    ensureLocalTls(files, "test");
    symlinkSync(files.cert, join(dir, "fullchain.pem"));
    symlinkSync(files.key, join(dir, "privkey.pem"));
    const testable = vmSite.content
      .replace("/etc/nginx/nodescale/orders-api.upstream.conf", NGINX_TEST_UPSTREAM)
      .replaceAll("/etc/nodescale/tls/live/", `${dir}/`);
    const verdict = nginxTest(testable);
    expect(verdict.output).toContain("test is successful");
    expect(verdict.status).toBe(0);
  });

  it("passes nginx -t as the VM site the provision script installs", () => {
    const [vmSite] = renderVmMachinePlan(spec, cluster).files;
    expect(vmSite.path).toBe("/etc/nginx/sites-available/orders-api.conf");
    expect(vmSite.content).toContain("listen 80 default_server;");
    expect(vmSite.content).toContain("include /etc/nginx/nodescale/orders-api.upstream.conf;");
    expect(nginxTest(vmSite.content.replace("/etc/nginx/nodescale/orders-api.upstream.conf", NGINX_TEST_UPSTREAM)).status).toBe(0);
  });

  it("refuses a listen value that could inject Nginx directives", () => {
    expect(() => renderNginxSite(spec, cluster, { listen: ["8080; include /etc/passwd"], accessLog: "off", upstreamFile: "/u" })).toThrow(
      new TemplateError('listen: "8080; include /etc/passwd" cannot go into a config file (allowed: letters, digits and . _ - / : @ [ ])'),
    );
  });
});

describe("HTTPS and security headers on the edge", () => {
  const dir = tempDir("nodescale-tls-");
  const files = localTlsFiles(dir);
  ensureLocalTls(files, "test");
  const tls = { listen: ["127.0.0.1:8443"], certificate: files.cert, certificateKey: files.key };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serves TLS 1.2 and 1.3 over HTTP/2 with Mozilla's intermediate ciphers, and passes nginx -t", () => {
    const text = renderNginxSite(spec, cluster, { listen: ["127.0.0.1:8080"], tls, accessLog: "off", upstreamFile: NGINX_TEST_UPSTREAM });
    expect(text).toContain("    listen 127.0.0.1:8080;\n    listen 127.0.0.1:8443 ssl http2;\n");
    expect(text).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
    expect(text).toContain(
      "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
    );
    expect(text).toContain("ssl_session_tickets off;");
    expect(text).not.toContain("Strict-Transport-Security");
    const verdict = nginxTest(text);
    expect(verdict.output).toContain("test is successful");
    expect(verdict.status).toBe(0);
  });

  it("sends HSTS only when asked (a real domain), and passes nginx -t on the load balancer too", () => {
    const text = renderNginxSite(spec, cluster, {
      listen: ["80"],
      tls: { ...tls, listen: ["443"], hstsSeconds: 63072000 },
      accessLog: "off",
      upstreamFile: NGINX_TEST_UPSTREAM,
    });
    expect(text).toContain('    add_header Strict-Transport-Security "max-age=63072000" always;\n');
    const lb = renderLoadBalancerSite(spec, {
      listen: ["127.0.0.1:8080"],
      tls,
      machines: 2,
      upstreamFile: NGINX_TEST_UPSTREAM,
      accessLog: "off",
    });
    expect(lb).toContain("    listen 127.0.0.1:8443 ssl http2;");
    expect(nginxTest(lb, "server 127.0.1.1:8080;\n").status).toBe(0);
  });

  it("behind a TLS-ending balancer sends HSTS only on what it received over HTTPS, and passes nginx -t", () => {
    const text = renderNginxSite(spec, cluster, {
      listen: ["80"],
      behindLoadBalancer: true,
      forwardedHstsSeconds: 63072000,
      accessLog: "off",
      upstreamFile: NGINX_TEST_UPSTREAM,
    });
    expect(text).toContain('map $http_x_forwarded_proto $nodescale_orders_api_hsts {\n    https   "max-age=63072000";\n    default "";\n}');
    expect(text).toContain("    add_header Strict-Transport-Security $nodescale_orders_api_hsts always;");
    expect(nginxTest(text).status).toBe(0);
  });

  it("adds nosniff, frame and referrer headers unless the app set its own, and cuts stalled clients off after 10 s", () => {
    const text = site();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      const variable = `$nodescale_orders_api_${name.toLowerCase().replace(/-/g, "_")}`;
      expect(text).toContain(
        `map $upstream_http_${name.toLowerCase().replace(/-/g, "_")} ${variable} {\n    ""      "${value}";\n    default "";\n}`,
      );
      expect(text).toContain(`    add_header ${name} ${variable} always;`);
    }
    expect(text).toContain("    client_header_timeout 10s;\n    client_body_timeout 10s;\n    send_timeout 10s;\n");
    const bare = renderNginxSite(spec, cluster, { listen: ["8080"], securityHeaders: false, accessLog: "off", upstreamFile: "/u" });
    for (const name of Object.keys(SECURITY_HEADERS)) expect(bare).not.toContain(name);
  });
});

describe("local load balancer template", () => {
  const lb = renderLoadBalancerSite(spec, { listen: ["127.0.0.1:8080"], machines: 2, upstreamFile: NGINX_TEST_UPSTREAM, accessLog: "off" });

  it("retries another machine on a refused connection or a 502/503/504, and sets no body limit of its own", () => {
    expect(lb).toMatchSnapshot();
    expect(lb).toContain("proxy_next_upstream error timeout http_502 http_503 http_504;");
    expect(lb).toContain("client_max_body_size 0;");
    expect(lb).toContain("keepalive_timeout 60s;");
    expect(lb).toContain("keepalive_timeout 65s;");
  });

  it("skips a machine for a while after it failed (passive health check), and marks a drained one down", () => {
    expect(renderMachineServers(["127.0.1.1:8080", "127.0.1.2:8080"], ["127.0.1.2:8080"])).toBe(
      "server 127.0.1.1:8080 max_fails=1 fail_timeout=1s;\nserver 127.0.1.2:8080 max_fails=1 fail_timeout=1s down;\n",
    );
  });

  it("passes nginx -t with its machines", () => {
    expect(nginxTest(lb, renderMachineServers(["127.0.1.1:8080", "127.0.1.2:8080"])).status).toBe(0);
  });
});

describe("machine plan", () => {
  const nginx = {
    kind: "prefix" as const,
    prefix: "/m/nginx",
    conf: "/m/nginx/nginx.conf",
    pidFile: "/m/nginx/nginx.pid",
    upstreamFile: "/m/u.conf",
    listen: "127.0.1.2:8080",
  };
  const plan = renderMachinePlan(spec, cluster, {
    machine: "m2",
    reportMachine: true,
    host: "127.0.1.2",
    baseDir: "/m",
    logDir: "/m/logs",
    pm2: { home: "/m/pm2", bin: "/bin/pm2" },
    nginx,
    files: [],
  });

  it("derives every timeout from the spec: ready wait, drain, kill", () => {
    expect(plan).toMatchObject({
      machine: "m2",
      service: "orders-api",
      mode: "cluster",
      host: "127.0.1.2",
      ports: [4000],
      readyPath: "/ready",
      readyTimeoutSeconds: 22,
      drainSeconds: 17,
      killTimeoutSeconds: 15,
      keepReleases: 3,
      clientFacing: true,
    });
    expect(spec.readyTimeoutSeconds).toBe(10 + 12);
    expect(spec.shutdownGraceSeconds).toBeLessThan(spec.killTimeoutMs / 1000);
    expect(spec.killTimeoutMs / 1000).toBeLessThan(spec.deregistrationDelaySeconds);
  });

  it("runs the app from the machine's current release, on its own address, reporting its machine name", () => {
    expect(plan.apps).toEqual(
      pm2Apps(spec, cluster, {
        appDir: "/m/current",
        logDir: "/m/logs",
        host: "127.0.1.2",
        machine: "m2",
        preload: "/m/release-headers.cjs",
        metricsSocketDir: "/m/metrics",
      }),
    );
    expect(plan.apps[0]).toMatchObject({
      name: "orders-api",
      script: "/m/current/dist/main.js",
      cwd: "/m/current",
      exec_mode: "cluster",
      instances: 3,
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 15_000,
      max_memory_restart: "460M",
      out_file: "/m/logs/orders-api.out.log",
    });
    expect(plan.apps[0].env).toMatchObject({ HOST: "127.0.1.2", PORT: "4000", NODESCALE_MACHINE: "m2", SHUTDOWN_GRACE_SECONDS: "12" });
  });

  it("lets PM2 match the cores when workers is auto, and gives each fork process its own port", () => {
    const auto = NodeServiceSpec.parse({ workers: "auto" });
    expect(pm2Apps(auto, processPlan(auto, "cluster"), { appDir: "/a", logDir: "/l" })[0].instances).toBe("max");
    expect(
      pm2Apps(spec, fork, { appDir: "/a", logDir: "/l" }).map((a) => [a.name, a.exec_mode, (a.env as Record<string, string>).PORT]),
    ).toEqual([
      ["orders-api-4000", "fork", "4000"],
      ["orders-api-4001", "fork", "4001"],
      ["orders-api-4002", "fork", "4002"],
    ]);
  });

  it("on a cloud VM: the system's Nginx, PM2 as an unprivileged user supervised by its systemd unit", () => {
    const vm = renderVmMachinePlan(spec, cluster);
    expect(vm).toMatchObject({
      baseDir: "/opt/nodescale",
      logDir: "/var/log/nodescale",
      pm2: { home: "/var/lib/nodescale/.pm2", bin: "/usr/local/bin/pm2", user: "nodescale", systemdUnit: "nodescale-pm2.service" },
      nginx: { kind: "systemd", pidFile: "/run/nginx.pid", upstreamFile: "/etc/nginx/nodescale/orders-api.upstream.conf" },
    });
    expect((vm.apps[0].env as Record<string, string>).NODESCALE_MACHINE).toBeUndefined();
  });
});

describe("log rotation on a VM", () => {
  it("bounds PM2's and Nginx's logs by size and count, which logrotate accepts, and runs hourly", () => {
    const rotation = renderLogRotation(spec);
    // PM2's own daemon log too, which PM2 never rotates itself.
    expect(rotation.logrotateApp).toContain(
      "/var/log/nodescale/*.log /var/lib/nodescale/.pm2/pm2.log {\n    daily\n    maxsize 100M\n    rotate 14\n",
    );
    expect(rotation.logrotateNginx).toContain("/var/log/nginx/*.log {\n    daily\n    maxsize 100M\n    rotate 14\n");
    expect(rotation.logrotateNginx).toContain('[ ! -f /run/nginx.pid ] || kill -USR1 "$(cat /run/nginx.pid)"');
    expect(rotation.logrotateTimer).toContain("OnCalendar=hourly");
    const dir = tempDir("nodescale-logrotate-");
    for (const [name, text] of Object.entries({ app: rotation.logrotateApp, nginx: rotation.logrotateNginx })) {
      writeFileSync(join(dir, name), `${text}\n`);
      // --debug parses and plans without touching any file.
      const run = spawnSync("logrotate", ["--debug", "--state", join(dir, "state"), join(dir, name)], { encoding: "utf8" });
      if (run.error) throw new Error(`logrotate is needed for this test (apt-get install -y logrotate): ${run.error.message}`);
      expect([name, run.status, run.stderr.match(/error: .*/g) ?? []]).toEqual([name, 0, []]);
    }
  });
});

describe("systemd units", () => {
  it("restarts PM2 and Nginx when they are killed, with no start limit, and passes systemd-analyze verify", () => {
    const unit = renderPm2Unit(spec, cluster);
    expect(unit).toMatchSnapshot();
    for (const line of [
      "Restart=always",
      "RestartSec=2s",
      "StartLimitIntervalSec=0",
      "KillMode=control-group",
      "User=nodescale",
      "Type=forking",
    ]) {
      expect(unit).toContain(line);
    }
    const verdict = systemdVerify("nodescale-pm2.service", unit);
    expect(verdict.output).toBe("");
    expect(verdict.status).toBe(0);
    expect(renderNginxRestartDropIn()).toContain("Restart=always");
  });

  it("renders drop-ins that systemd-analyze verify accepts on the distribution's nginx.service and logrotate.timer", () => {
    const nginx = systemdVerifyDropIn("nginx.service", renderNginxRestartDropIn());
    expect(nginx.output).toBe("");
    expect(nginx.status).toBe(0);
    const logrotate = systemdVerifyDropIn("logrotate.timer", renderLogRotation(spec).logrotateTimer);
    expect(logrotate.output).toBe("");
    expect(logrotate.status).toBe(0);
  });

  it("sandboxes PM2 and the app: systemd-analyze security rates the unit OK or better (it was 8.7 EXPOSED)", () => {
    const verdict = systemdSecurity("nodescale-pm2.service", renderPm2Unit(spec, cluster));
    expect([verdict.level, verdict.exposure <= 4.9]).toEqual(["OK", true]);
    // What Node and PM2 need stays allowed: JIT memory, the network, the app's own user.
    expect(verdict.output).toMatch(/✗ MemoryDenyWriteExecute=/);
    expect(verdict.output).toMatch(/✗ PrivateNetwork=/);
  });

  it("waits long enough to stop every process within its kill timeout, two at a time", () => {
    expect(pm2StopTimeoutSeconds(spec, cluster)).toBe(2 * 15 + 10);
    expect(renderPm2Unit(spec, cluster)).toContain("TimeoutStopSec=40s");
    const auto = NodeServiceSpec.parse({ shutdownGraceSeconds: 100 });
    expect(pm2StopTimeoutSeconds(auto, processPlan(auto, "cluster"))).toBe(8 * 103 + 10);
  });
});

describe("provision script", () => {
  const script = renderProvisionScript(spec, cluster, {
    bundleSource: `BUNDLE_SHA256="${"ab".repeat(32)}"\nfetch_bundle() { curl -fsSL "https://example.invalid/bundle" -o "$1"; }`,
  });

  it("passes shellcheck and verifies the Node.js download", () => {
    expect(shellcheck(script)).toBe("");
    expect(script).toContain('echo "${NODE_SHA256}  ${tmp}/node.tar.xz" | sha256sum --check --strict -');
    expect(script).toMatch(/npm install --global .*"pm2@\$\{PM2_VERSION\}"/);
  });

  it("installs the same machine agent and a plan for it, then lets the agent gate and converge the release", () => {
    const agent = script.slice(script.indexOf("<<'NODESCALE_AGENT'\n") + 20, script.indexOf("\nNODESCALE_AGENT\n"));
    expect(agent).toContain("NodeScale machine agent");
    const planJson = script.slice(script.indexOf("<<'NODESCALE_PLAN'\n") + 19, script.indexOf("\nNODESCALE_PLAN\n"));
    expect(JSON.parse(planJson)).toEqual(renderVmMachinePlan(spec, cluster));
    expect(script).toContain(
      '/usr/local/bin/node "${BASE}/bin/machine-agent.js" deploy "${BASE}/plan.json" --bundle "${bundle}" --sha256 "${BUNDLE_SHA256}"',
    );
    expect(script).toContain("systemctl enable nginx.service nodescale-pm2.service");
  });

  it("writes every config file to a temporary name and moves it into place", () => {
    for (const move of [
      'mv -f "${BASE}/plan.json.tmp" "${BASE}/plan.json"',
      'mv -f "/opt/nodescale/bin/machine-agent.js.tmp" "/opt/nodescale/bin/machine-agent.js"',
      "mv -f /etc/systemd/system/nodescale-pm2.service.tmp /etc/systemd/system/nodescale-pm2.service",
      "mv -f /etc/logrotate.d/nodescale.tmp /etc/logrotate.d/nodescale",
    ]) {
      expect(script).toContain(move);
    }
  });
});

describe("templates", () => {
  it("fails on a placeholder without a value and on a value without a placeholder", () => {
    expect(() => fillTemplate("t", "a {{x}} {{y}}", { x: 1 })).toThrow(new TemplateError("template t: no value for placeholder {{y}}"));
    expect(() => fillTemplate("t", "a {{x}}", { x: 1, z: 2 })).toThrow(
      new TemplateError("template t: values given for placeholders it does not have: z"),
    );
  });
});

describe("the local Nginx's workers", () => {
  it("run as the user who deploys: under a root master, not nobody, who may not reach a checkout in a 0700 folder", () => {
    const user = nginxWorkerUser();
    expect(user).toBe(process.getuid?.() === 0 ? "root" : undefined);
    const main = renderNginxMain({ prefix: "/p", siteFile: "/p/site.conf", user: "root" });
    expect(main.split("\n").slice(1, 3)).toEqual(["user root;", "worker_processes 1;"]);
    expect(renderNginxMain({ prefix: "/p", siteFile: "/p/site.conf" })).not.toContain("user ");
    expect(() => renderNginxMain({ prefix: "/p", siteFile: "/p/site.conf", user: "root; include /etc/passwd" })).toThrow(TemplateError);
  });
});
