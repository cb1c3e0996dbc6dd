import { resolve } from "node:path";
import { App } from "./constructs/cdk";
import { bundleApp } from "./constructs/vm/bundle";
import { exitOnConfigError } from "./stacks/cli-errors";
import { appDir, loadConfig } from "./stacks/config";
import { DoksStack } from "./stacks/doks";
import { EksStack } from "./stacks/eks";
import { LocalStack } from "./stacks/local";
import { VmPm2Stack } from "./stacks/vm-pm2";
import { VmPm2DoStack } from "./stacks/vm-pm2-do";

// Runs compiled from dist/, so the project root is one level up.
const projectRoot = resolve(__dirname, "..");
const app = new App();
exitOnConfigError(() => {
  const loaded = loadConfig();
  const bundle = bundleApp(appDir(loaded, projectRoot));
  new LocalStack(app, "local", { loaded, bundle, projectRoot, instance: process.env.NODESCALE_LOCAL_INSTANCE || undefined });
  new VmPm2Stack(app, "vm-pm2", { loaded, bundle });
  new VmPm2DoStack(app, "vm-pm2-do", { loaded, bundle });
  new EksStack(app, "eks", { loaded, projectRoot, releaseId: bundle.sha256 });
  new DoksStack(app, "doks", { loaded, projectRoot, releaseId: bundle.sha256 });
});
app.synth();
