#!/usr/bin/env node
// The `nodescale` command: `nodescale init` adopts NodeScale in an existing service; `nodescale health` is the
// post-deploy health check (the same CLI the deploys run).
import { parseArgs } from "node:util";
import { InitError, initConfig } from "./init";
import { defaultMetricsUrl, runTop } from "./top";

const USAGE = `usage: nodescale init [folder] [--force] [--name NAME]
       nodescale health --url URL [...]   (nodescale health --help)
       nodescale top [--url METRICS_URL]  (default: http://127.0.0.1:<service.metricsPort> of ./nodescale.config.json)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`nodescale: ${message}\n`);
  process.exit(code);
}

function init(args: string[]): void {
  let parsed: ReturnType<typeof parseArgs<{ options: { force: { type: "boolean" }; name: { type: "string" } }; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args, options: { force: { type: "boolean" }, name: { type: "string" } }, allowPositionals: true });
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`, 2);
  }
  if (parsed.positionals.length > 1) fail(`init takes one folder, got ${parsed.positionals.length}\n${USAGE}`, 2);
  try {
    const result = initConfig({ dir: parsed.positionals[0] ?? process.cwd(), force: parsed.values.force, name: parsed.values.name });
    const service = result.config.service as { name: string; start: string };
    process.stdout.write(`nodescale: wrote ${result.file} (service "${service.name}", runs ${service.start})\n`);
    for (const w of result.warnings) process.stdout.write(`nodescale: before the first deploy: ${w}\n`);
    process.stdout.write(`next:\n${result.next.map((line) => `  ${line}`).join("\n")}\n`);
  } catch (err) {
    if (err instanceof InitError) fail(`cannot init: ${err.message}`);
    throw err;
  }
}

function top(args: string[]): void {
  let url: string | undefined;
  try {
    url = parseArgs({ args, options: { url: { type: "string" } } }).values.url;
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`, 2);
  }
  const target = url ?? defaultMetricsUrl(process.cwd(), process.env);
  if (!/^https?:\/\/[^\s/]+\/?$/.test(target))
    fail(`--url must be the metrics listener's base URL, such as http://127.0.0.1:9464; got ${JSON.stringify(target)}`, 2);
  void runTop(target, process.stdout);
}

const [command, ...rest] = process.argv.slice(2);
if (command === "init") init(rest);
else if (command === "top") top(rest);
else if (command === "health") {
  process.argv.splice(2, 1);
  require("../health/cli");
} else if (command === undefined || command === "--help" || command === "-h") process.stdout.write(`${USAGE}\n`);
else fail(`unknown command ${JSON.stringify(command)}\n${USAGE}`, 2);
