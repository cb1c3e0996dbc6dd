import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

// scripts/local-up.sh (npm run local) in a copy of the scripts folder, with stand-ins for npm, npx and nginx on
// PATH that only record their arguments: what is under test is the command line the script builds, not a deploy.
function runLocalUp(instance: string | undefined): string {
  const dir = tempDir("nodescale-local-up-");
  mkdirSync(join(dir, "scripts"));
  mkdirSync(join(dir, "bin"));
  copyFileSync(join(ROOT, "scripts", "local-up.sh"), join(dir, "scripts", "local-up.sh"));
  const calls = join(dir, "calls");
  for (const tool of ["npm", "npx", "nginx"]) {
    writeFileSync(join(dir, "bin", tool), `#!/bin/sh\necho "${tool} $*" >> "${calls}"\n`);
    chmodSync(join(dir, "bin", tool), 0o755);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` };
  delete env.NODESCALE_LOCAL_INSTANCE;
  if (instance !== undefined) env.NODESCALE_LOCAL_INSTANCE = instance;
  const run = spawnSync("bash", [join(dir, "scripts", "local-up.sh")], { env, encoding: "utf8" });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  return readFileSync(calls, "utf8");
}

describe("npm run local (scripts/local-up.sh)", () => {
  it("writes the outputs of each NODESCALE_LOCAL_INSTANCE to a file of its own, local-outputs.json by default", () => {
    expect(runLocalUp(undefined)).toContain("npx cdktf deploy local --auto-approve --outputs-file .nodescale/local-outputs.json\n");
    expect(runLocalUp("blue")).toContain("npx cdktf deploy local --auto-approve --outputs-file .nodescale/blue-outputs.json\n");
    expect(runLocalUp("green")).toContain("npx cdktf deploy local --auto-approve --outputs-file .nodescale/green-outputs.json\n");
  });
});
