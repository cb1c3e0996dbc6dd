import { podRun, synthesizedPod } from "../helpers/pod-run";

// The mapping the image test runs the image with (test/containers/image.test.ts): read from the synthesized pod.
describe("the synthesized pod spec, read as docker run flags", () => {
  const parsed = synthesizedPod({}, "ghcr.io/acme/orders:1.4.2");

  it("maps the pod's user, capabilities, read-only root, no new privileges, memory limit and /tmp", () => {
    const run = podRun(parsed);
    expect(run.flags).toEqual([
      "--user",
      "10001:10001",
      "--group-add",
      "10001",
      "--security-opt",
      "no-new-privileges",
      "--read-only",
      "--cap-drop",
      "ALL",
      "--memory",
      "512m",
      "--tmpfs",
      "/tmp:rw,mode=1777,size=64m",
    ]);
    expect([run.entrypoint, run.args, run.graceSeconds, run.user]).toEqual(["node", ["dist/main.js"], 20, 10001]);
    expect(Object.keys(run.configMaps)).toEqual(["/opt/nodescale"]);
  });

  it.each([
    ["a pod field", (pod: Record<string, unknown>) => Object.assign(pod, { host_network: true }), "pod spec: host_network not understood"],
    [
      "a container securityContext field",
      (pod: Record<string, unknown>) =>
        Object.assign((pod.container as Record<string, Record<string, unknown>>[])[0].security_context, { privileged: true }),
      "container securityContext: privileged not understood",
    ],
  ])("fails on %s the mapping does not understand", (_, change, message) => {
    const copy = JSON.parse(JSON.stringify(parsed));
    const deployment = Object.values(copy.resource.kubernetes_deployment_v1)[0] as {
      spec: { template: { spec: Record<string, unknown> } };
    };
    change(deployment.spec.template.spec);
    expect(() => podRun(copy)).toThrow(message);
  });
});
