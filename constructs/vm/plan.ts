import { InvalidPropError } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";

export type VmMode = "cluster" | "fork";
/** The PM2 mode every VM construct defaults to: one port, PM2's cluster balancing workers. */
export const DEFAULT_VM_MODE: VmMode = "cluster";

/** How the service's processes sit on one machine: what the Nginx, PM2 and reload renderers all share. */
export interface ProcessPlan {
  readonly mode: VmMode;
  /** Ports Nginx proxies to: one in cluster mode, one per process in fork mode. */
  readonly ports: readonly number[];
  /** PM2 instances of the single cluster-mode app; 1 per app in fork mode. */
  readonly instances: number | "max";
  /** Processes that will answer, when known at synth time (undefined for "max" on a machine we cannot see). */
  readonly expectedProcesses: number | undefined;
}

/**
 * @param cores the machine's core count when it is known at synth time (the local machine); omit for cloud VMs,
 * where `workers: "auto"` becomes PM2's own "max".
 */
export function processPlan(spec: NodeServiceSpec, mode: VmMode, cores?: number): ProcessPlan {
  if (mode === "fork") {
    if (spec.workers === "auto" && cores === undefined) {
      throw new InvalidPropError(
        `processPlan: workers "auto" with mode "fork" needs the machine's core count (one port per process): pass cores, or give the spec a number of workers 1-64`,
      );
    }
    const count = spec.workerCount(cores ?? 1);
    const ports = spec.forkPorts(count);
    if (ports.includes(spec.metricsPort)) {
      throw new InvalidPropError(
        `service.metricsPort: ${spec.metricsPort} is one of the fork-mode ports ${ports[0]}-${ports[ports.length - 1]} (service.port and one per worker); choose a port outside them`,
      );
    }
    return { mode, ports, instances: 1, expectedProcesses: count };
  }
  if (spec.workers === "auto" && cores === undefined) return { mode, ports: [spec.port], instances: "max", expectedProcesses: undefined };
  const count = spec.workerCount(cores ?? 1);
  return { mode, ports: [spec.port], instances: count, expectedProcesses: count };
}
