import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderNginxMain } from "../../constructs/vm/render";

/** Runs `nginx -t` on a site file inside a throwaway prefix; returns nginx's verdict text and exit code. */
export function nginxTest(site: string): { status: number | null; output: string } {
  const prefix = mkdtempSync(join(tmpdir(), "nodescale-nginx-"));
  mkdirSync(join(prefix, "logs"));
  mkdirSync(join(prefix, "tmp"));
  writeFileSync(join(prefix, "site.conf"), site);
  writeFileSync(join(prefix, "nginx.conf"), renderNginxMain({ prefix, siteFile: join(prefix, "site.conf") }));
  const run = spawnSync("nginx", ["-t", "-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "logs", "error.log")], {
    encoding: "utf8",
  });
  if (run.error) throw new Error(`nginx is needed for this test (apt-get install -y nginx): ${run.error.message}`);
  return { status: run.status, output: run.stderr };
}

/** Runs shellcheck on a script's text; returns its findings ("" when clean). */
export function shellcheck(script: string): string {
  const run = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: script, encoding: "utf8" });
  if (run.error) throw new Error(`shellcheck is needed for this test (apt-get install -y shellcheck): ${run.error.message}`);
  return run.stdout;
}
