import { ConfigError } from "../../constructs/service/errors";
import { isPinnedImage } from "../../constructs/service/rules";
import { NodeServiceSpec } from "../../constructs/service/spec";
import { processPlan } from "../../constructs/vm/plan";
import { parseConfig } from "../../stacks/config";

describe("NodeServiceSpec derivations", () => {
  const spec = NodeServiceSpec.parse({ shutdownGraceSeconds: 20, memoryMiB: 1000 });

  it("nests shutdown timeouts: app grace < PM2 kill_timeout < pod terminationGracePeriodSeconds", () => {
    expect(spec.shutdownGraceSeconds * 1000).toBeLessThan(spec.killTimeoutMs);
    expect(spec.killTimeoutMs).toBe(23_000);
    expect(spec.killTimeoutMs / 1000).toBeLessThan(spec.terminationGracePeriodSeconds(5));
    expect(spec.terminationGracePeriodSeconds(5)).toBe(30);
  });

  it("keeps Node's keep-alive longer than the 60 s idle timeout of Nginx and load balancers", () => {
    expect(spec.upstreamIdleTimeoutSeconds).toBe(60);
    expect(spec.keepAliveTimeoutMs).toBe(65_000);
    expect(spec.headersTimeoutMs).toBeGreaterThan(spec.keepAliveTimeoutMs);
  });

  it("resolves worker counts: auto follows the cores, a number is kept", () => {
    expect(spec.workerCount(6)).toBe(6);
    expect(spec.pm2Instances).toBe("max");
    const fixed = NodeServiceSpec.parse({ workers: 3 });
    expect(fixed.workerCount(16)).toBe(3);
    expect(fixed.pm2Instances).toBe(3);
    expect(fixed.forkPorts(3)).toEqual([3000, 3001, 3002]);
  });

  it("refuses less memory than Node.js itself needs, saying why", () => {
    expect(() => NodeServiceSpec.parse({ memoryMiB: 64 })).toThrow(
      "service.memoryMiB: 64 is not allowed: must be a whole number 128-65536 (memory per Node process; Node.js alone takes about 45 MiB)",
    );
  });

  it("restarts on memory before the kernel would, at 90% of memoryMiB", () => {
    expect(spec.maxMemoryRestart).toBe("900M");
  });

  it("gives every process the derived settings and the user's variables, derived ones winning", () => {
    const withEnv = NodeServiceSpec.parse({ env: { LOG_LEVEL: "debug", NODE_ENV: "staging" } });
    expect(withEnv.appEnv(3001)).toEqual({
      NODE_ENV: "staging",
      LOG_LEVEL: "debug",
      PORT: "3001",
      METRICS_PORT: "9464",
      HOST: "127.0.0.1",
      SHUTDOWN_GRACE_SECONDS: "10",
      KEEP_ALIVE_TIMEOUT_MS: "65000",
      HEADERS_TIMEOUT_MS: "66000",
    });
    expect(withEnv.appEnv(3001, "0.0.0.0", { release: "r-1", machine: "m2" })).toMatchObject({
      HOST: "0.0.0.0",
      NODESCALE_RELEASE: "r-1",
      NODESCALE_MACHINE: "m2",
    });
  });

  it("nests the drain timeouts: app grace < PM2 kill timeout < load balancer deregistration delay", () => {
    const defaults = NodeServiceSpec.parse(undefined);
    expect([defaults.shutdownGraceSeconds, defaults.killTimeoutMs / 1000, defaults.deregistrationDelaySeconds]).toEqual([10, 13, 15]);
    expect(defaults.readyTimeoutSeconds).toBe(20);
    const slow = NodeServiceSpec.parse({ shutdownGraceSeconds: 120 });
    expect(slow.deregistrationDelaySeconds).toBeGreaterThan(slow.killTimeoutMs / 1000);
  });

  it("uses /health for liveness and /ready for readiness by default", () => {
    const defaults = NodeServiceSpec.parse(undefined);
    expect([defaults.name, defaults.port, defaults.healthPath, defaults.readyPath]).toEqual(["hello-node", 3000, "/health", "/ready"]);
  });

  it("gives metrics a port of their own: not the app's, not one of the fork-mode ports", () => {
    expect(() => NodeServiceSpec.parse({ port: 4000, metricsPort: 4000 })).toThrow(
      "service.metricsPort: 4000 is not allowed: must differ from service.port (4000): metrics have a listener of their own, never the app's",
    );
    const spec = NodeServiceSpec.parse({ port: 4000, metricsPort: 4002, workers: 4 });
    expect(() => processPlan(spec, "fork")).toThrow(
      "service.metricsPort: 4002 is one of the fork-mode ports 4000-4003 (service.port and one per worker); choose a port outside them",
    );
    expect(processPlan(spec, "cluster").ports).toEqual([4000]);
  });

  it("rejects bad props with the field, the value and what is allowed", () => {
    expect(() => NodeServiceSpec.parse({ port: 80, readyPath: "/health", env: { PORT: "1" } }, "code")).toThrow(
      new ConfigError("code", [
        "service.port: 80 is not allowed: must be a whole number 1024-65535 (the port the Node process listens on; ports below 1024 need root)",
        'service.readyPath: "/health" is not allowed: must differ from service.healthPath (liveness and readiness answer different questions)',
        'service.env.PORT: "1" is not allowed: is set by NodeScale from the spec (reserved: PORT, HOST, WORKERS, SHUTDOWN_GRACE_SECONDS, KEEP_ALIVE_TIMEOUT_MS, HEADERS_TIMEOUT_MS, NODESCALE_RELEASE, NODESCALE_MACHINE, NODESCALE_APP_HASH, METRICS_PORT, METRICS_SOCKET_DIR); change the matching service field instead',
      ]).message,
    );
  });
});

describe("one rule for a pinned image, shared by the config and NodeWorkload", () => {
  it.each([
    ["ghcr.io/acme/api:1.4.2", true],
    ["localhost:5000/api:2026-11-01", true],
    [`ghcr.io/acme/api@sha256:${"a".repeat(64)}`, true],
    [`ghcr.io/acme/api:1.4.2@sha256:${"a".repeat(64)}`, true],
    [`ghcr.io/acme/api:latest@sha256:${"a".repeat(64)}`, true],
    ["${TfToken[TOKEN.12]}:r-0123abcd", true],
    ["ghcr.io/acme/api", false],
    ["localhost:5000/api", false],
    ["ghcr.io/acme/api:latest", false],
    ["ghcr.io/acme/api@sha256:short", false],
    ["GHCR.io/acme/api:1", false],
  ])("%s pinned: %s", (ref, pinned) => {
    expect(isPinnedImage(ref)).toBe(pinned);
    const inConfig = ref.replace("${TfToken[TOKEN.12]}", "registry.example.com/app");
    const accepted = (() => {
      try {
        return parseConfig({ image: inConfig }).config.image === inConfig;
      } catch {
        return false;
      }
    })();
    expect(accepted).toBe(pinned);
  });
});
