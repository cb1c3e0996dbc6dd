// The synthesized pod spec read as `docker run` flags: the image test runs the image exactly as the pod would, so
// the two cannot drift. A field this mapping does not understand is an error, never silently ignored.
import { join } from "node:path";
import { Testing } from "../../constructs/cdk";
import { parseConfig } from "../../stacks/config";
import { K8sStack } from "../../stacks/k8s";
import { ROOT } from "./processes";
import { only, type Synth } from "./synth";

type Obj = Record<string, unknown>;

/** How a pod runs its one container, as docker flags. */
export interface PodRun {
  /** Flags for `docker run` (before the image). */
  readonly flags: string[];
  /** What follows the image (the container's command after its first word, which is the entrypoint). */
  readonly entrypoint: string;
  readonly args: string[];
  /** `docker stop -t`: the pod's terminationGracePeriodSeconds. */
  readonly graceSeconds: number;
  /** The UID the pod runs as. */
  readonly user: number;
  /** Read-only mounts the caller provides: mount path -> files (a ConfigMap's data). */
  readonly configMaps: Record<string, Record<string, string>>;
}

/**
 * Fields of the pod and its container with no `docker run` counterpart that matters for how the process runs
 * (scheduling, probes, the service account, ports published by the test itself), each with why.
 */
const POD_IGNORED: Record<string, string> = {
  automount_service_account_token: "no service account token exists outside a cluster",
  enable_service_links: "no Service variables exist outside a cluster",
  topology_spread_constraint: "scheduling",
  service_account_name: "no service account exists outside a cluster",
};
const CONTAINER_IGNORED: Record<string, string> = {
  name: "a label",
  image: "the test passes its own build of the same image",
  image_pull_policy: "the image is local",
  port: "the test publishes the port it checks",
  env: "the test sets the spec's environment itself",
  readiness_probe: "the test polls the ready path itself",
  liveness_probe: "the test polls the health path itself",
  startup_probe: "the test polls the health path itself",
  lifecycle: "preStop runs before SIGTERM in a pod; docker stop sends SIGTERM at once (the stricter case)",
};

function keysOf(where: string, value: unknown, known: readonly string[]): Obj {
  const obj = (value ?? {}) as Obj;
  const unknown = Object.keys(obj).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new Error(`${where}: ${unknown.join(", ")} not understood by the docker run mapping (test/helpers/pod-run.ts)`);
  return obj;
}

/** Reads the Deployment's pod spec (as synthesized) into docker run flags. */
export function podRun(parsed: Synth): PodRun {
  const deployment = only(parsed.resource, "kubernetes_deployment_v1") as Obj;
  const pod = ((deployment.spec as Obj).template as Obj).spec as Obj;
  keysOf("pod spec", pod, ["container", "security_context", "termination_grace_period_seconds", "volume", ...Object.keys(POD_IGNORED)]);
  const containers = pod.container as Obj[];
  if (containers.length !== 1) throw new Error(`pod spec: ${containers.length} containers; the mapping runs one`);
  const container = keysOf("container", containers[0], [
    "command",
    "resources",
    "security_context",
    "volume_mount",
    ...Object.keys(CONTAINER_IGNORED),
  ]);
  const flags: string[] = [];

  const podSc = keysOf("pod securityContext", pod.security_context, [
    "run_as_user",
    "run_as_group",
    "run_as_non_root",
    "fs_group",
    "seccomp_profile",
  ]);
  const sc = keysOf("container securityContext", container.security_context, [
    "allow_privilege_escalation",
    "read_only_root_filesystem",
    "run_as_non_root",
    "capabilities",
  ]);
  const user = Number(podSc.run_as_user ?? 0);
  const group = Number(podSc.run_as_group ?? user);
  if ((podSc.run_as_non_root === true || sc.run_as_non_root === true) && user === 0) throw new Error("runAsNonRoot with no runAsUser");
  flags.push("--user", `${user}:${group}`);
  // fsGroup: the kubelet adds it to the process's supplementary groups (and owns the volumes by it).
  if (podSc.fs_group !== undefined) flags.push("--group-add", String(podSc.fs_group));
  const seccomp = keysOf("seccompProfile", podSc.seccomp_profile, ["type"]);
  // RuntimeDefault is Docker's default profile too; anything else would need its own flag.
  if (seccomp.type !== undefined && seccomp.type !== "RuntimeDefault") throw new Error(`seccompProfile ${String(seccomp.type)} not mapped`);
  if (sc.allow_privilege_escalation === false) flags.push("--security-opt", "no-new-privileges");
  if (sc.read_only_root_filesystem === true) flags.push("--read-only");
  const caps = keysOf("capabilities", sc.capabilities, ["drop", "add"]);
  for (const c of (caps.drop as string[] | undefined) ?? []) flags.push("--cap-drop", c);
  for (const c of (caps.add as string[] | undefined) ?? []) flags.push("--cap-add", c);

  const resources = keysOf("resources", container.resources, ["limits", "requests"]);
  const limits = keysOf("resources.limits", resources.limits, ["memory", "cpu"]);
  if (limits.memory !== undefined) flags.push("--memory", String(limits.memory).replace(/Mi$/, "m").replace(/Gi$/, "g"));
  if (limits.cpu !== undefined) flags.push("--cpus", String(Number(String(limits.cpu).replace(/m$/, "")) / 1000));

  const configMaps: Record<string, Record<string, string>> = {};
  const volumes = new Map(((pod.volume as Obj[] | undefined) ?? []).map((v) => [String(v.name), v]));
  for (const mount of (container.volume_mount as Obj[] | undefined) ?? []) {
    keysOf("volumeMount", mount, ["name", "mount_path", "read_only"]);
    const volume = keysOf("volume", volumes.get(String(mount.name)), ["name", "empty_dir", "config_map"]);
    const path = String(mount.mount_path);
    if (volume.empty_dir !== undefined) {
      const emptyDir = keysOf("emptyDir", volume.empty_dir, ["size_limit", "medium"]);
      const size = emptyDir.size_limit !== undefined ? `,size=${String(emptyDir.size_limit).replace(/Mi$/, "m")}` : "";
      // Writable by the pod's user (fsGroup owns an emptyDir), size-bounded like the emptyDir.
      flags.push("--tmpfs", `${path}:rw,mode=1777${size}`);
    } else if (volume.config_map !== undefined) {
      const ref = String(keysOf("configMap", volume.config_map, ["name", "default_mode"]).name);
      const id = /^\$\{kubernetes_config_map_v1\.([^.]+)\./.exec(ref)?.[1];
      const map = id !== undefined ? (parsed.resource.kubernetes_config_map_v1?.[id] as Obj | undefined) : undefined;
      if (map === undefined) throw new Error(`configMap ${ref} is not in the synthesized stack`);
      configMaps[path] = map.data as Record<string, string>;
    } else {
      throw new Error(`volume ${String(mount.name)}: only emptyDir and configMap are mapped`);
    }
  }

  const command = (container.command as string[] | undefined) ?? [];
  if (command.length === 0) throw new Error("container has no command: the mapping runs the pod's command");
  return {
    flags,
    entrypoint: command[0],
    args: command.slice(1),
    graceSeconds: Number(pod.termination_grace_period_seconds ?? 30),
    user,
    configMaps,
  };
}

/** The Deployment the `k8s` stack synthesizes for this service config (the image named as the pod names it). */
export function synthesizedPod(service: Record<string, unknown>, image: string): Synth {
  const cluster = { context: "test", ingressClassName: "traefik", ingressNamespace: "traefik" };
  const stack = new K8sStack(Testing.app(), "k8s", {
    loaded: parseConfig({ service, image, kubernetes: { cluster } }),
    appDir: join(ROOT, "app"),
    releaseId: "b".repeat(64),
  });
  return JSON.parse(Testing.synth(stack, true)) as Synth;
}
