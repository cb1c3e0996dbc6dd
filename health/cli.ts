#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkHealth, formatReport, pathProblem, waitForMachine } from "./check";

const USAGE =
  "usage: nodescale-health --url URL [--expect-workers N] [--expect-hostnames N] [--expect-machines N] [--expect-release ID] [--wait-for-machine NAME] [--timeout SECONDS] [--requests N] [--health-path P] [--ready-path P] [--ca FILE] [--host NAME] [--json]";

/** A usage error: one line and the usage, exit 2, never a stack trace. */
function refuse(message: string): never {
  process.stderr.write(`nodescale-health: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:\d{1,5})?$/;

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) refuse(`--${name} must be a whole number >= 1, got ${JSON.stringify(raw)}`);
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
        ca: { type: "string" },
        host: { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    refuse((err as Error).message);
  }
  const url = values.url as string | undefined;
  const parsed = url !== undefined && URL.canParse(url) ? new URL(url) : undefined;
  if (!url || !parsed || !/^https?:$/.test(parsed.protocol) || !/^https?:\/\/[^/\s]+/.test(url)) {
    refuse(`--url must be an http(s) URL, got ${JSON.stringify(url ?? null)}`);
  }
  for (const name of ["health-path", "ready-path"]) {
    const path = values[name] as string | undefined;
    const problem = path === undefined ? undefined : pathProblem(`--${name}`, path);
    if (problem !== undefined) refuse(problem);
  }
  const host = values.host as string | undefined;
  if (host !== undefined && !HOST_NAME.test(host))
    refuse(`--host must be a host name such as api.example.com, got ${JSON.stringify(host)}`);
  const caFile = values.ca as string | undefined;
  let ca: string | undefined;
  if (caFile !== undefined) {
    if (parsed.protocol !== "https:") refuse(`--ca applies to https URLs only, got ${JSON.stringify(url)}`);
    try {
      ca = readFileSync(caFile, "utf8");
    } catch (err) {
      refuse(`--ca ${JSON.stringify(caFile)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) refuse(`--ca ${JSON.stringify(caFile)} holds no PEM certificate`);
  }
  const machine = values["wait-for-machine"] as string | undefined;
  if (machine !== undefined) {
    const wait = await waitForMachine({
      url,
      machine,
      release: values["expect-release"] as string | undefined,
      timeoutSeconds: positiveInt("timeout", values.timeout as string | undefined),
      ca,
      host,
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
    ca,
    host,
  });
  process.stdout.write(`${values.json ? JSON.stringify(report) : formatReport(report)}\n`);
  process.exit(report.healthy ? 0 : 1);
}

main().catch((err: unknown) => {
  // Whatever went wrong, one line: the deploy's output is read by people.
  process.stderr.write(`nodescale-health: ${(err as Error).message ?? String(err)}\n`);
  process.exit(2);
});
