import { join, resolve } from "node:path";
import { App } from "./constructs/cdk";
import { packRelease } from "./constructs/release/release-pack";
import { exitOnConfigError } from "./stacks/cli-errors";
import { loadConfig, resolveApp } from "./stacks/config";
import { DoksStack } from "./stacks/doks";
import { EksStack } from "./stacks/eks";
import { K8sStack } from "./stacks/k8s";
import { LocalStack } from "./stacks/local";
import { VmPm2Stack } from "./stacks/vm-pm2";
import { VmPm2DoStack } from "./stacks/vm-pm2-do";

// Runs compiled from dist/, so the project root is one level up.
const projectRoot = resolve(__dirname, "..");
// cdktf's CLI names the output folder; run by hand from another folder, it still goes to the project's.
const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? join(projectRoot, "cdktf.out") });
exitOnConfigError(() => {
  const { dir, loaded } = resolveApp(loadConfig(process.env, projectRoot), projectRoot);
  const { spec } = loaded;
  const bundle = packRelease({ appDir: dir, entry: spec.start, build: spec.build, cacheDir: join(projectRoot, ".nodescale", "releases") });
  new LocalStack(app, "local", { loaded, bundle, projectRoot, instance: process.env.NODESCALE_LOCAL_INSTANCE || undefined });
  new VmPm2Stack(app, "vm-pm2", { loaded, bundle });
  new VmPm2DoStack(app, "vm-pm2-do", { loaded, bundle });
  new EksStack(app, "eks", { loaded, appDir: dir, releaseId: bundle.sha256 });
  new DoksStack(app, "doks", { loaded, appDir: dir, releaseId: bundle.sha256 });
  new K8sStack(app, "k8s", { loaded, appDir: dir, releaseId: bundle.sha256 });
});
app.synth();
