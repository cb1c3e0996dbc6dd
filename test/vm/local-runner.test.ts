import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT } from "../helpers/processes";

const RUNNER = join(ROOT, "dist", "constructs", "vm", "local-runner.js");
const NGINX_MISSING =
  "nodescale local: nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS).\n";
// Only node's and bash's folders: /usr/sbin, where Debian puts nginx, is left out.
const WITHOUT_NGINX = `${dirname(process.execPath)}:/bin`;

describe("local runner (the local stack's apply and destroy steps)", () => {
  it("says how to install nginx when it is missing, and starts nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "nodescale-no-nginx-"));
    const state = join(dir, "state");
    try {
      const run = spawnSync(process.execPath, [RUNNER, "apply"], {
        env: { PATH: WITHOUT_NGINX, NODESCALE_DIR: state, NODESCALE_RUN_ID: "x" },
        encoding: "utf8",
      });
      expect(run.stderr).toBe(NGINX_MISSING);
      expect(run.status).toBe(1);
      expect(existsSync(state)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives npm run local the same message before anything is built", () => {
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-up.sh")], { env: { PATH: WITHOUT_NGINX }, encoding: "utf8" });
    expect(run.stderr).toBe(NGINX_MISSING);
    expect(run.status).toBe(1);
  });

  it("refuses an unknown action", () => {
    const run = spawnSync(process.execPath, [RUNNER, "upgrade"], { env: { PATH: process.env.PATH }, encoding: "utf8" });
    expect(run.stderr).toBe("nodescale local: unknown action upgrade; use apply, destroy, reload or down\n");
    expect(run.status).toBe(1);
  });

  it("says there is nothing to restart before anything was deployed", () => {
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-reload.sh")], {
      env: { ...process.env, NODESCALE_LOCAL_INSTANCE: `never-deployed-${process.pid}` },
      encoding: "utf8",
    });
    expect(run.stderr).toBe("nodescale local: nothing is deployed here; run 'npm run local' first.\n");
    expect(run.status).toBe(1);
  });
});
