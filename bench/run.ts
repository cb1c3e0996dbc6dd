import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { appScaling, metricsCost } from "./app-scaling";
import { proxyOverhead } from "./proxy";
import { ratio, renderBenchReport } from "./report";
import { synthCost } from "./synth-cost";

// npm run bench: each benchmark prints ratios of two things measured side by side in this run, and the run
// writes them as an HTML report with charts (bench/report/index.html).
const root = join(__dirname, "..", "..");
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const rps = (n: number) => n.toFixed(0);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "nodescale-bench-"));
  try {
    const scaling = await appScaling(root, work, seconds);
    const scalingRatio = scaling.cluster.requestsPerSecond / scaling.single.requestsPerSecond;
    console.log(
      `app scaling (${scaling.cores} cores, autocannon -c 16 -d ${seconds} on GET /cpu?ms=5, load generator on the same machine):`,
    );
    console.log(
      `  cluster of ${scaling.cores} workers vs 1 process: ${scalingRatio.toFixed(2)}x requests/s (${rps(scaling.cluster.requestsPerSecond)} vs ${rps(scaling.single.requestsPerSecond)})`,
    );
    console.log(`  ratio / cores = ${(scalingRatio / scaling.cores).toFixed(2)} (aim: >= 0.90)`);

    const proxy = await proxyOverhead(root, work, seconds);
    console.log(`proxy overhead (GET /, the local stack's Nginx: ${proxy.nginxWorkers} worker, buffered JSON access log):`);
    console.log(
      `  through Nginx vs direct: ${ratio(proxy.proxied.requestsPerSecond, proxy.direct.requestsPerSecond)} requests/s (${rps(proxy.proxied.requestsPerSecond)} vs ${rps(proxy.direct.requestsPerSecond)}; aim: >= 0.75x)`,
    );

    const metrics = await metricsCost(root, work, seconds);
    console.log("metrics cost (GET /, one process):");
    console.log(
      `  with metrics vs without: ${ratio(metrics.with.requestsPerSecond, metrics.without.requestsPerSecond)} requests/s (${rps(metrics.with.requestsPerSecond)} vs ${rps(metrics.without.requestsPerSecond)})`,
    );

    const dir = join(root, "bench", "report");
    mkdirSync(dir, { recursive: true });
    const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
    writeFileSync(
      join(dir, "index.html"),
      renderBenchReport({ scaling, proxy, metrics, seconds, when: new Date().toISOString(), machine }),
    );
    console.log(`report: ${join(dir, "index.html")} (opens offline in any browser)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  await synthCost(root, rounds);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
