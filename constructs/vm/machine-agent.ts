import { templatePath } from "../template";

/** The part of the machine agent's Machine class its in-process callers (the local runner) use. */
export interface AgentMachine {
  pending(sha256: string): string[];
  deploy(options: { bundle: string; sha256: string; restart: boolean; dryRun: boolean; drain?: () => Promise<void> }): Promise<void>;
  stop(): Promise<void>;
  nginxStop(): Promise<void>;
  nginxApply(): Promise<void>;
  nginxMaster(): number | undefined;
}

export interface MachineAgent {
  Machine: new (plan: unknown, log: (message: string) => void) => AgentMachine;
  AgentError: new (message: string) => Error;
  /** Atomic write of a file whose content differs; true when it changed. */
  writeIfChanged(file: string, content: string, mode?: number): boolean;
  /** The `server` lines of a machine's upstream, as the agent writes them at each deploy. */
  upstreamServers(host: string, ports: readonly number[]): string;
  /** Polls a URL until it answers 200; resolves with why not when the time ran out. */
  waitUntilReady(url: string, seconds: number): Promise<string | undefined>;
}

/**
 * The machine agent is plain JavaScript shipped to machines as it is (templates/vm/machine-agent.js); the
 * local runner and the tests load that same file, so what they run is what a VM runs.
 */
export const machineAgent = require(templatePath("vm/machine-agent.js")) as MachineAgent;
