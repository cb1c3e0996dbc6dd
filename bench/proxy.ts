import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { NodeServiceSpec } from "../constructs/service/spec";
import { processPlan } from "../constructs/vm/plan";
import { renderNginxMain, renderNginxSite } from "../constructs/vm/render";
import { freePort, type Measured, measure, startApp, stop, waitReady } from "./load";

/** The local stack's Nginx: one worker (renderNginxMain's default, which the local stack keeps). */
const NGINX_WORKERS = 1;

export interface ProxyResults {
  readonly direct: Measured;
  readonly proxied: Measured;
  readonly nginxWorkers: number;
}

/**
 * The local stack's Nginx in front of the clustered sample app, rendered by the same functions (JSON access log,
 * buffered, on), vs the app's port directly, on GET /. Client limits are off here: one load generator on one
 * address is exactly what they exist to stop.
 */
export async function proxyOverhead(root: string, work: string, seconds: number): Promise<ProxyResults> {
  const cores = availableParallelism();
  const app = await startApp(join(root, "app", "dist", "cluster.js"), { WORKERS: String(cores) }, join(work, "app.log"));
  let nginx: ChildProcess | undefined;
  const prefix = join(work, "nginx");
  try {
    const listen = await freePort();
    const spec = NodeServiceSpec.parse({ name: "bench", port: app.port, workers: cores });
    const plan = processPlan(spec, "cluster", cores);
    for (const dir of ["logs", "tmp"]) mkdirSync(join(prefix, dir), { recursive: true });
    const upstreamFile = join(prefix, "upstream.conf");
    writeFileSync(upstreamFile, `server 127.0.0.1:${app.port} max_fails=0;\nserver 127.0.0.1:${app.port} max_fails=0;\n`);
    const site = join(prefix, "site.conf");
    writeFileSync(
      site,
      renderNginxSite(spec, plan, {
        listen: [`127.0.0.1:${listen}`],
        clientLimits: false,
        accessLog: join(prefix, "logs", "access.log"),
        upstreamFile,
      }),
    );
    const conf = join(prefix, "nginx.conf");
    writeFileSync(conf, renderNginxMain({ prefix, siteFile: site, workerProcesses: NGINX_WORKERS }));
    const check = spawnSync("nginx", ["-t", "-q", "-p", prefix, "-c", conf, "-e", join(prefix, "logs", "error.log")], { encoding: "utf8" });
    if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
    nginx = spawn("nginx", ["-p", prefix, "-c", conf, "-e", join(prefix, "logs", "error.log"), "-g", "daemon off;"], { stdio: "ignore" });
    await waitReady(listen, "nginx");
    // Side by side, in turns, so drift on a shared machine falls on both.
    const direct = await measure(app.port, "/", seconds);
    const proxied = await measure(listen, "/", seconds);
    return { direct, proxied, nginxWorkers: NGINX_WORKERS };
  } finally {
    if (nginx !== undefined) await stop(nginx);
    await stop(app.child);
  }
}
