import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, nodeCost, type ProcessCost } from "./measure";

const ROOT_IMPORTS = `require("@cdktf/provider-aws"); require("@cdktf/provider-kubernetes"); require("@cdktf/provider-digitalocean");`;

/** `cdktf synth` of every stack (the compiled app, as cdktf.json runs it) vs loading the three provider roots. */
export async function synthCost(root: string, rounds: number): Promise<void> {
  const synth: ProcessCost[] = [];
  const floor: ProcessCost[] = [];
  for (let i = 0; i < rounds; i++) {
    const out = mkdtempSync(join(tmpdir(), "nodescale-bench-"));
    // Interleaved, so a slow moment on the machine hits both sides alike.
    synth.push(await nodeCost(`require(${JSON.stringify(join(root, "dist", "main.js"))});`, { ...process.env, CDKTF_OUTDIR: out }, root));
    floor.push(await nodeCost(ROOT_IMPORTS, process.env, root));
    rmSync(out, { recursive: true, force: true });
  }
  const s = { wall: median(synth.map((c) => c.wallMs)), rss: median(synth.map((c) => c.maxRssMiB)) };
  const f = { wall: median(floor.map((c) => c.wallMs)), rss: median(floor.map((c) => c.maxRssMiB)) };
  console.log(`synth cost (median of ${rounds} interleaved rounds; node dist/main.js with CDKTF_OUTDIR vs node -e '${ROOT_IMPORTS}'):`);
  console.log(
    `  our synth of all stacks / loading the three provider roots: ${(s.wall / f.wall).toFixed(2)}x wall time, ${(s.rss / f.rss).toFixed(2)}x peak memory`,
  );
  console.log(
    `  (${s.wall.toFixed(0)} ms, ${s.rss.toFixed(0)} MiB vs ${f.wall.toFixed(0)} ms, ${f.rss.toFixed(0)} MiB; aim: both ratios < 1)`,
  );
}
