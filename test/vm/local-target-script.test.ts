import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT } from "../helpers/processes";

// The apply step as Terraform runs it, on a machine without nginx: a clear message, nothing started.
describe("local target script", () => {
  it("says how to install nginx when it is missing", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "nodescale-no-nginx-")), "state");
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-target.sh"), "apply"], {
      // Only node's and bash's folders: /usr/sbin, where Debian puts nginx, is left out.
      env: { PATH: `${dirname(process.execPath)}:/bin`, NODESCALE_DIR: dir, NODESCALE_ROOT: ROOT, NODESCALE_DEPLOY_ID: "x" },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      "nodescale local: nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS).\n",
    );
    expect(spawnSync("test", ["-e", dir]).status).toBe(1);
  });

  it("gives npm run local the same message before anything is built", () => {
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-target.sh"), "preflight"], {
      env: { PATH: `${dirname(process.execPath)}:/bin` },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      "nodescale local: nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS).\n",
    );
  });

  it("refuses an unknown action", () => {
    const run = spawnSync("bash", [join(ROOT, "scripts", "local-target.sh"), "upgrade"], {
      env: { PATH: process.env.PATH, NODESCALE_DIR: "/nonexistent", NODESCALE_ROOT: ROOT, NODESCALE_DEPLOY_ID: "x" },
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("nodescale local: unknown action upgrade; use apply, destroy or preflight\n");
  });
});
