import { spawn } from "node:child_process";

export interface ProcessCost {
  readonly wallMs: number;
  readonly maxRssMiB: number;
}

/** Runs `node -e <code>` and reports its wall time and peak memory (the child measures its own maxRSS). */
export function nodeCost(code: string, env: NodeJS.ProcessEnv, cwd: string): Promise<ProcessCost> {
  const wrapped = `process.on("exit", () => process.stderr.write("\\nNODESCALE_MAXRSS=" + process.resourceUsage().maxRSS + "\\n")); ${code}`;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", wrapped], { env, cwd, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      const wallMs = performance.now() - started;
      const match = /NODESCALE_MAXRSS=(\d+)/.exec(err);
      if (code !== 0 || !match) return reject(new Error(`child failed (${code}): ${err.slice(-2000)}`));
      resolve({ wallMs, maxRssMiB: Number(match[1]) / 1024 });
    });
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
