import { cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderDockerfile } from "../../constructs/k8s/dockerfile";
import { resolveBuildScript, stageSources } from "../../constructs/release/release-pack";
import { NODE_RELEASES, SUPPORTED_NODE_MAJORS } from "../../constructs/service/node-releases";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { processPlan } from "../../constructs/vm/plan";
import { renderProvisionScript } from "../../constructs/vm/provision";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

const instructionsOf = (dockerfile: string) => dockerfile.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
const sample = NodeServiceSpec.parse({});
const express = NodeServiceSpec.parse({ name: "orders", source: "test/fixtures/express-app", start: "server.js", port: 8080 });

describe("Dockerfile", () => {
  it("builds in one stage and runs from another, both on the Node.js release the spec pins (a build argument)", () => {
    const lines = instructionsOf(renderDockerfile(sample, false));
    expect(lines[0]).toBe(`ARG NODE_IMAGE=node:${NODE_RELEASES[22].version}-bookworm-slim`);
    expect(lines.filter((l) => l.startsWith("FROM "))).toEqual(["FROM ${NODE_IMAGE} AS build", "FROM ${NODE_IMAGE}"]);
    expect(lines.filter((l) => l.startsWith("COPY --from=build"))).toEqual(["COPY --from=build /src /app"]);
    const on24 = instructionsOf(renderDockerfile(NodeServiceSpec.parse({ nodeVersion: 24 }), false));
    expect(on24[0]).toBe(`ARG NODE_IMAGE=node:${NODE_RELEASES[24].version}-bookworm-slim`);
  });

  it("installs from the lock file, runs the build script when there is one, then keeps production dependencies only", () => {
    const lines = instructionsOf(renderDockerfile(express, "build"));
    const steps = lines.filter((l) => l.startsWith("RUN ") || l.startsWith("COPY ")).slice(1, 7);
    expect(steps).toEqual([
      "COPY package*.json npm-shrinkwrap.json* ./",
      'RUN ["npm", "ci", "--no-audit", "--no-fund"]',
      "COPY . .",
      'RUN ["npm", "run", "build"]',
      'RUN ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"]',
      'RUN ["test", "-f", "server.js"]',
    ]);
    expect(instructionsOf(renderDockerfile(express, false))).not.toContainEqual(expect.stringContaining("npm run"));
  });

  it("trusts an extra CA bundle (a TLS-intercepting proxy's) in the build stage only, given as a build argument", () => {
    const lines = instructionsOf(renderDockerfile(express, false));
    const shipping = lines.lastIndexOf("FROM ${NODE_IMAGE}");
    const extra = lines.findIndex((l) => l.startsWith("ARG EXTRA_CA_CERTS_BASE64"));
    expect(lines[extra]).toBe('ARG EXTRA_CA_CERTS_BASE64=""');
    expect(lines.indexOf("ENV NODE_EXTRA_CA_CERTS=/tmp/nodescale-extra-ca.pem")).toBeLessThan(shipping);
    expect(extra).toBeLessThan(shipping);
    expect(lines.slice(shipping).join("\n")).not.toContain("EXTRA_CA");
  });

  it("runs the spec's entry file as a non-root user on the spec's port, stopping on SIGTERM", () => {
    const lines = instructionsOf(renderDockerfile(express, false));
    expect(lines).toContain("USER 10001:10001");
    expect(lines).toContain("ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080");
    expect(lines).toContain("EXPOSE 8080");
    expect(lines).toContain("STOPSIGNAL SIGTERM");
    expect(lines[lines.length - 1]).toBe('CMD ["node", "server.js"]');
    expect(lines[lines.length - 1]).toBe(`CMD ["node", ${JSON.stringify(express.start)}]`);
  });

  it("runs the same Node.js release as the VMs for every supported major, and VMs verify its pinned checksum", () => {
    for (const major of SUPPORTED_NODE_MAJORS) {
      const spec = NodeServiceSpec.parse({ nodeVersion: major });
      const image = instructionsOf(renderDockerfile(spec, false))[0].replace("ARG NODE_IMAGE=node:", "").replace("-bookworm-slim", "");
      const script = renderProvisionScript(spec, processPlan(spec, "cluster"), { bundleSource: 'BUNDLE_SHA256=""\nfetch_bundle() { :; }' });
      expect(script).toContain(`readonly NODE_VERSION="${image}"`);
      expect(script).toContain(`readonly NODE_SHA256="${NODE_RELEASES[major].linuxX64Sha256}"`);
      expect(NODE_RELEASES[major].linuxX64Sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(NODE_RELEASES[major].version.split(".")[0]).toBe(String(major));
    }
  });
});

describe("image build context", () => {
  it("is the app's sources as a release takes them: no node_modules, no .env, with the lock file", () => {
    const app = tempDir("nodescale-app-");
    cpSync(join(ROOT, "test", "fixtures", "express-app"), app, { recursive: true });
    mkdirSync(join(app, "node_modules", "express"), { recursive: true });
    writeFileSync(join(app, "node_modules", "express", "index.js"), "// installed on the developer's machine\n");
    writeFileSync(join(app, ".env"), "TOKEN=local-secret\n");
    const staged = tempDir("nodescale-context-");
    const files = stageSources(app, staged);
    expect(files).toEqual(["package-lock.json", "package.json", "server.js"]);
    expect(readdirSync(staged).sort()).toEqual(["package-lock.json", "package.json", "server.js"]);
    expect(resolveBuildScript(join(ROOT, "test", "fixtures", "express-app"), undefined)).toBe(false);
    expect(resolveBuildScript(join(ROOT, "app"), undefined)).toBe(false);
  });
});
