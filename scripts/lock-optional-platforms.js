#!/usr/bin/env node
// The npm registry reachable here serves only linux-x64 builds of packages with per-platform binaries
// (@swc/core, @biomejs/biome, unrs-resolver), so `npm install` leaves the other platforms out of
// package-lock.json and `npm ci` then refuses the lock. This adds each missing optional platform
// package with its os/cpu/libc, so npm ci skips it here and fetches it on the platform that needs it.
// Run after `npm install`: node scripts/lock-optional-platforms.js
const { readFileSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");

const file = join(__dirname, "..", "package-lock.json");
const lock = JSON.parse(readFileSync(file, "utf8"));
const OS = ["android", "darwin", "win32", "freebsd", "openharmony", "linux", "sunos", "aix"];
const CPU = [
  ["arm64", "arm64"],
  ["aarch64", "arm64"],
  ["x64", "x64"],
  ["ia32", "ia32"],
  ["loong64", "loong64"],
  ["riscv64", "riscv64"],
  ["ppc64", "ppc64"],
  ["s390x", "s390x"],
  ["arm", "arm"],
];

function platformOf(name) {
  const base = name.split("/").pop();
  const os = OS.find((o) => base.includes(o));
  const cpu = CPU.find(([k]) => new RegExp(`(^|-)${k}(-|$)`).test(base));
  if (!os || !cpu) return undefined;
  const entry = { os: [os], cpu: [cpu[1]] };
  if (os === "linux") entry.libc = [base.includes("musl") ? "musl" : "glibc"];
  return entry;
}

let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const at = `node_modules/${dep}`;
    if (lock.packages[at] || lock.packages[`${path}/${at}`]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    lock.packages[at] = { version, ...(pkg.dev ? { dev: true } : {}), optional: true, ...platform };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-optional-platforms: added ${added} platform package(s)`);
