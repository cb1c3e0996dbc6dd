import { runInNewContext } from "node:vm";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { processPlan } from "../../constructs/vm/plan";
import { renderProvisionScript } from "../../constructs/vm/provision";
import { renderEcosystem, renderNginxSite, renderReloadScript } from "../../constructs/vm/render";
import { fillTemplate, TemplateError } from "../../constructs/vm/template";
import { nginxTest, shellcheck } from "../helpers/tools";

const spec = NodeServiceSpec.parse({ name: "orders-api", port: 4000, workers: 3, shutdownGraceSeconds: 12, maxBodySizeMiB: 25 });
const cluster = processPlan(spec, "cluster");
const fork = processPlan(spec, "fork");
const site = (plan = cluster) => renderNginxSite(spec, plan, { listen: ["127.0.0.1:8080"], accessLog: "off" });

function loadEcosystem(text: string): { apps: Record<string, unknown>[] } {
  const module = { exports: {} as { apps: Record<string, unknown>[] } };
  runInNewContext(text, { module });
  return module.exports;
}

describe("Nginx site template", () => {
  it("renders cluster mode: one upstream port, listed twice so a reload can retry", () => {
    const text = site();
    expect(text).toMatchSnapshot();
    expect(text.match(/server 127\.0\.0\.1:4000 max_fails=0;/g)).toHaveLength(2);
    expect(text).toContain("proxy_next_upstream_tries 3;");
  });

  it("renders fork mode: every process port in the upstream", () => {
    const text = site(fork);
    expect(text).toMatch(
      /server 127\.0\.0\.1:4000 max_fails=0;\n {4}server 127\.0\.0\.1:4001 max_fails=0;\n {4}server 127\.0\.0\.1:4002 max_fails=0;/,
    );
    expect(text).toContain("proxy_next_upstream_tries 4;");
  });

  it("keeps upstream connections alive and forwards what the app needs to know", () => {
    const text = site();
    for (const line of [
      "keepalive 16;",
      "keepalive_timeout 60s;",
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
    ["cluster", cluster],
    ["fork", fork],
  ])("passes nginx -t in %s mode", (_, plan) => {
    const verdict = nginxTest(site(plan));
    expect(verdict.output).toContain("test is successful");
    expect(verdict.status).toBe(0);
  });

  it("passes nginx -t as the VM site inside the provision script", () => {
    const vmSite = renderNginxSite(spec, cluster, {
      listen: ["80 default_server", "[::]:80 default_server"],
      accessLog: "/tmp/access.log",
    });
    expect(nginxTest(vmSite).status).toBe(0);
  });

  it("refuses a listen value that could inject Nginx directives", () => {
    expect(() => renderNginxSite(spec, cluster, { listen: ["8080; include /etc/passwd"], accessLog: "off" })).toThrow(
      new TemplateError('listen: "8080; include /etc/passwd" cannot go into a config file (allowed: letters, digits and . _ - / : @ [ ])'),
    );
  });
});

describe("PM2 ecosystem template", () => {
  const options = { appDir: "/opt/nodescale/current", logDir: "/var/log/nodescale" };

  it("renders one cluster-mode app with readiness, timeouts and a memory limit from the spec", () => {
    const text = renderEcosystem(spec, cluster, options);
    expect(text).toMatchSnapshot();
    const { apps } = loadEcosystem(text);
    expect(apps).toHaveLength(1);
    expect(apps[0]).toMatchObject({
      name: "orders-api",
      exec_mode: "cluster",
      instances: 3,
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 15_000,
      max_memory_restart: "460M",
      out_file: "/var/log/nodescale/orders-api.out.log",
    });
    expect((apps[0].env as Record<string, string>).SHUTDOWN_GRACE_SECONDS).toBe("12");
  });

  it("lets PM2 match the cores when workers is auto", () => {
    const auto = NodeServiceSpec.parse({ workers: "auto" });
    expect(loadEcosystem(renderEcosystem(auto, processPlan(auto, "cluster"), options)).apps[0].instances).toBe("max");
  });

  it("renders one fork-mode app per port, each told its own PORT", () => {
    const { apps } = loadEcosystem(renderEcosystem(spec, fork, options));
    expect(apps.map((a) => [a.name, a.exec_mode, (a.env as Record<string, string>).PORT])).toEqual([
      ["orders-api-4000", "fork", "4000"],
      ["orders-api-4001", "fork", "4001"],
      ["orders-api-4002", "fork", "4002"],
    ]);
  });
});

describe("reload and provision scripts", () => {
  it("reloads cluster mode with one startOrReload and fork mode port by port", () => {
    const clusterScript = renderReloadScript(spec, cluster, { ecosystemFile: "/opt/nodescale/ecosystem.config.js" });
    const forkScript = renderReloadScript(spec, fork, { ecosystemFile: "/opt/nodescale/ecosystem.config.js" });
    expect(clusterScript).toContain('mode="cluster"');
    expect(clusterScript).toContain('"$pm2_bin" startOrReload "$ecosystem" --update-env');
    expect(forkScript).toContain("ports=(4000 4001 4002)");
    expect(forkScript).toContain('--only "orders-api-${port}"');
    expect(shellcheck(clusterScript)).toBe("");
    expect(shellcheck(forkScript)).toBe("");
  });

  it("renders a provision script that shellcheck passes and that verifies what it downloads", () => {
    const script = renderProvisionScript(spec, cluster, {
      bundleSource: `BUNDLE_SHA256="${"ab".repeat(32)}"\nfetch_bundle() { curl -fsSL "https://example.invalid/bundle" -o "$1"; }`,
    });
    expect(script).toMatchSnapshot();
    expect(shellcheck(script)).toBe("");
    expect(script).toContain('echo "${NODE_SHA256}  ${tmp}/node.tar.xz" | sha256sum --check --strict -');
    expect(script).toContain('echo "${BUNDLE_SHA256}  ${bundle}.partial" | sha256sum --check --strict -');
    expect(script).toContain("User=${APP_USER}");
    expect(script).toContain('echo "${BUNDLE_SHA256}" > "${release}.partial/RELEASE"');
    expect(script).toMatch(/npm install --global .*"pm2@\$\{PM2_VERSION\}"/);
  });

  it("fails on a placeholder without a value and on a value without a placeholder", () => {
    expect(() => fillTemplate("t", "a {{x}} {{y}}", { x: 1 })).toThrow(new TemplateError("template t: no value for placeholder {{y}}"));
    expect(() => fillTemplate("t", "a {{x}}", { x: 1, z: 2 })).toThrow(
      new TemplateError("template t: values given for placeholders it does not have: z"),
    );
  });
});
