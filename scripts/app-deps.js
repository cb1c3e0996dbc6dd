#!/usr/bin/env node
// Installs the sample app's own dependencies (app/node_modules, from app/package-lock.json) when they are missing
// or differ from the lock: the build compiles the app against them and the tests run it from app/dist.

const { spawnSync } = require("node:child_process");
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const app = join(__dirname, "..", "app");
const packages = (file) => {
  try {
    const all = JSON.parse(readFileSync(file, "utf8")).packages ?? {};
    return JSON.stringify(
      Object.entries(all)
        .filter(([name]) => name.startsWith("node_modules/"))
        .map(([name, p]) => [name, p.version])
        .sort(),
    );
  } catch {
    return undefined;
  }
};
if (packages(join(app, "node_modules", ".package-lock.json")) === packages(join(app, "package-lock.json"))) process.exit(0);
const run = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: app, stdio: "inherit" });
process.exit(run.status ?? 1);
