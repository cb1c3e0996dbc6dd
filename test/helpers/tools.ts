import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderNginxMain } from "../../constructs/vm/render";

/** Where nginxTest puts the upstream `server` lines a site includes. */
export const NGINX_TEST_UPSTREAM = "/tmp/nodescale-nginx-test-upstream.conf";

/**
 * Runs `nginx -t` on a site file inside a throwaway prefix (with `upstreamServers` at NGINX_TEST_UPSTREAM);
 * returns nginx's verdict text and exit code, and removes the prefix.
 */
export function nginxTest(
  site: string,
  upstreamServers = "server 127.0.0.1:3000 max_fails=0;\n",
): { status: number | null; output: string } {
  const prefix = mkdtempSync(join(tmpdir(), "nodescale-nginx-"));
  mkdirSync(join(prefix, "logs"));
  mkdirSync(join(prefix, "tmp"));
  writeFileSync(NGINX_TEST_UPSTREAM, upstreamServers);
  writeFileSync(join(prefix, "site.conf"), site);
  writeFileSync(join(prefix, "nginx.conf"), renderNginxMain({ prefix, siteFile: join(prefix, "site.conf") }));
  const run = spawnSync("nginx", ["-t", "-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "logs", "error.log")], {
    encoding: "utf8",
  });
  rmSync(prefix, { recursive: true, force: true });
  rmSync(NGINX_TEST_UPSTREAM, { force: true });
  if (run.error) throw new Error(`nginx is needed for this test (apt-get install -y nginx): ${run.error.message}`);
  return { status: run.status, output: run.stderr };
}

/** Runs shellcheck on a script's text; returns its findings ("" when clean). */
export function shellcheck(script: string): string {
  const run = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: script, encoding: "utf8" });
  if (run.error) throw new Error(`shellcheck is needed for this test (apt-get install -y shellcheck): ${run.error.message}`);
  return run.stdout;
}

/** `systemd-analyze security --offline` on a unit's text: its overall exposure (0 safest, 10 most exposed) and level. */
export function systemdSecurity(name: string, unit: string): { exposure: number; level: string; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "nodescale-unit-"));
  writeFileSync(join(dir, name), unit);
  const run = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", join(dir, name)], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  const m = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(`${run.stdout}${run.stderr}`);
  if (!m) throw new Error(`systemd-analyze security gave no verdict:\n${run.stdout}${run.stderr}`);
  return { exposure: Number(m[1]), level: m[2], output: run.stdout };
}

/**
 * Runs `systemd-analyze verify` on a unit's text (as NAME in a throwaway folder); returns its findings.
 * verify also checks that each command exists, so /usr/local/bin/X (installed at provision time) points
 * at an executable stub in the same folder.
 */
export function systemdVerify(name: string, unit: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "nodescale-unit-"));
  for (const bin of new Set(unit.match(/\/usr\/local\/bin\/[a-z0-9-]+/g) ?? [])) {
    writeFileSync(join(dir, bin.split("/").pop() as string), "#!/bin/sh\n", { mode: 0o755 });
  }
  writeFileSync(join(dir, name), unit.replace(/\/usr\/local\/bin\//g, `${dir}/`));
  const run = spawnSync("systemd-analyze", ["verify", "--man=no", join(dir, name)], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  if (run.error) throw new Error(`systemd-analyze is needed for this test (apt-get install -y systemd): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/**
 * Runs `systemd-analyze verify` on a distribution's unit (as installed here, e.g. nginx.service from Debian's nginx)
 * with `dropIn` applied as `<unit>.d/nodescale.conf`; returns its findings (a bad line of the drop-in is named).
 */
export function systemdVerifyDropIn(unit: string, dropIn: string): { status: number | null; output: string } {
  const installed = join("/lib/systemd/system", unit);
  if (!existsSync(installed)) throw new Error(`${installed} is needed for this test (the distribution's package that ships it)`);
  const dir = mkdtempSync(join(tmpdir(), "nodescale-unit-"));
  copyFileSync(installed, join(dir, unit));
  mkdirSync(join(dir, `${unit}.d`));
  writeFileSync(join(dir, `${unit}.d`, "nodescale.conf"), dropIn);
  // The folder first, then the usual unit paths (the trailing ":"), so the drop-in is found beside the unit.
  const run = spawnSync("systemd-analyze", ["verify", "--man=no", join(dir, unit)], {
    encoding: "utf8",
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
  });
  rmSync(dir, { recursive: true, force: true });
  if (run.error) throw new Error(`systemd-analyze is needed for this test (apt-get install -y systemd): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
