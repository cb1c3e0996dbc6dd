import { mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packRelease } from "../../constructs/release/release-pack";
import { tempDir } from "../helpers/fixtures";
import { ROOT } from "../helpers/processes";

// The machine agent as every machine runs it; required as a module, as the local target does.
const { Machine } = require(join(ROOT, "templates", "vm", "machine-agent.js"));

/** A tiny app as a release; `n` makes each one another release. */
function release(n: number): { file: string; sha256: string } {
  const dir = tempDir("nodescale-prune-app-");
  mkdirSync(join(dir, "dist"));
  writeFileSync(join(dir, "package.json"), '{"name":"fixture","version":"1.0.0"}\n');
  writeFileSync(join(dir, "package-lock.json"), '{"name":"fixture","version":"1.0.0","lockfileVersion":3,"packages":{}}\n');
  writeFileSync(join(dir, "dist", "main.js"), `// release ${n}\n`);
  const bundle = packRelease({ appDir: dir });
  const file = join(dir, "release.tar.gz");
  writeFileSync(file, bundle.data);
  rmSync(join(dir, "dist"), { recursive: true });
  return { file, sha256: bundle.sha256 };
}

describe("old releases pruned to vm.keepReleases (the current one included)", () => {
  const releases = [1, 2, 3, 4, 5].map(release);
  const sha = (n: number) => releases[n - 1].sha256;

  /** A machine that received releases 1..5 in order, pruning after each as a successful deploy does. */
  function machineWithFiveReleases(keep: number) {
    const base = tempDir("nodescale-prune-machine-");
    const machine = new Machine({ machine: "m1", baseDir: base }, () => undefined);
    for (const r of releases) {
      machine.installRelease(r.file, r.sha256);
      machine.switchCurrent(r.sha256);
      machine.pruneReleases(keep);
    }
    return { base, machine, kept: () => readdirSync(join(base, "releases")).sort() };
  }

  it("keeps exactly the current release and the newest previous ones: 5 releases, keep 3 -> releases 3, 4, 5", () => {
    const { base, kept } = machineWithFiveReleases(3);
    expect(kept()).toEqual([sha(3), sha(4), sha(5)].sort());
    expect(readlinkSync(join(base, "current"))).toBe(join("releases", sha(5)));
  });

  it("keeps the current release when it is not the newest (a redeploy of an older one), and the newest others", () => {
    const { base, machine, kept } = machineWithFiveReleases(5);
    expect(kept()).toHaveLength(5);
    machine.switchCurrent(sha(2));
    machine.pruneReleases(3);
    expect(kept()).toEqual([sha(2), sha(4), sha(5)].sort());
    expect(readlinkSync(join(base, "current"))).toBe(join("releases", sha(2)));
  });

  it("keeps only the current release with keepReleases 1", () => {
    const { kept } = machineWithFiveReleases(1);
    expect(kept()).toEqual([sha(5)]);
  });
});
