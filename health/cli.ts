#!/usr/bin/env node
import { parseArgs } from "node:util";
import { checkHealth, formatReport, waitForMachine } from "./check";

const USAGE =
  "usage: nodescale-health --url URL [--expect-workers N] [--expect-hostnames N] [--expect-machines N] [--expect-release ID] [--wait-for-machine NAME] [--timeout SECONDS] [--requests N] [--health-path P] [--ready-path P] [--json]";

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    process.stderr.write(`nodescale-health: --${name} must be a whole number >= 1, got ${JSON.stringify(raw)}\n${USAGE}\n`);
    process.exit(2);
  }
  return Number(raw);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        "expect-workers": { type: "string" },
        "expect-hostnames": { type: "string" },
        "expect-machines": { type: "string" },
        "expect-release": { type: "string" },
        "wait-for-machine": { type: "string" },
        timeout: { type: "string" },
        "health-path": { type: "string" },
        "ready-path": { type: "string" },
        requests: { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`nodescale-health: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const url = values.url as string | undefined;
  if (!url || !/^https?:\/\/[^/\s]+/.test(url)) {
    process.stderr.write(`nodescale-health: --url must be an http(s) URL, got ${JSON.stringify(url ?? null)}\n${USAGE}\n`);
    process.exit(2);
  }
  const machine = values["wait-for-machine"] as string | undefined;
  if (machine !== undefined) {
    const wait = await waitForMachine({
      url,
      machine,
      release: values["expect-release"] as string | undefined,
      timeoutSeconds: positiveInt("timeout", values.timeout as string | undefined),
    });
    process.stdout.write(`${wait.line}\n`);
    process.exit(wait.ok ? 0 : 1);
  }
  const report = await checkHealth({
    url,
    expectWorkers: positiveInt("expect-workers", values["expect-workers"] as string | undefined),
    expectHostnames: positiveInt("expect-hostnames", values["expect-hostnames"] as string | undefined),
    expectMachines: positiveInt("expect-machines", values["expect-machines"] as string | undefined),
    expectRelease: values["expect-release"] as string | undefined,
    timeoutSeconds: positiveInt("timeout", values.timeout as string | undefined),
    burstRequests: positiveInt("requests", values.requests as string | undefined),
    healthPath: values["health-path"] as string | undefined,
    readyPath: values["ready-path"] as string | undefined,
  });
  process.stdout.write(`${values.json ? JSON.stringify(report) : formatReport(report)}\n`);
  process.exit(report.healthy ? 0 : 1);
}

void main();
