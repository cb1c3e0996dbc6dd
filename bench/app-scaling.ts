import { availableParallelism } from "node:os";
import { join } from "node:path";
import { freePort, type Measured, measure, startApp, stop } from "./load";

export interface ScalingResults {
  readonly cores: number;
  readonly single: Measured;
  readonly cluster: Measured;
}

/** Cluster of N workers vs one process on /cpu?ms=5, measured back to back in this run. */
export async function appScaling(root: string, work: string, seconds: number): Promise<ScalingResults> {
  const cores = availableParallelism();
  const dist = join(root, "app", "dist");
  const single = await startApp(join(dist, "main.js"), {}, join(work, "single.log"));
  const singleResult = await measure(single.port, "/cpu?ms=5", seconds).finally(() => stop(single.child));
  const cluster = await startApp(join(dist, "cluster.js"), { WORKERS: String(cores) }, join(work, "cluster.log"));
  const clusterResult = await measure(cluster.port, "/cpu?ms=5", seconds).finally(() => stop(cluster.child));
  return { cores, single: singleResult, cluster: clusterResult };
}

export interface MetricsCostResults {
  readonly without: Measured;
  readonly with: Measured;
}

/** One process on GET /, with metrics (METRICS=on, a listener on METRICS_PORT) and without (METRICS=off). */
export async function metricsCost(root: string, work: string, seconds: number): Promise<MetricsCostResults> {
  const main = join(root, "app", "dist", "main.js");
  const off = await startApp(main, { METRICS: "off" }, join(work, "metrics-off.log"));
  const without = await measure(off.port, "/", seconds).finally(() => stop(off.child));
  const on = await startApp(main, { METRICS: "on", METRICS_PORT: String(await freePort()) }, join(work, "metrics-on.log"));
  const withMetrics = await measure(on.port, "/", seconds).finally(() => stop(on.child));
  return { without, with: withMetrics };
}
