import { resolve } from "node:path";
import { App } from "./constructs/cdk";
import { exitOnConfigError } from "./stacks/cli-errors";
import { loadConfig } from "./stacks/config";
import { LocalStack } from "./stacks/local";

// Runs compiled from dist/, so the project root is one level up.
const projectRoot = resolve(__dirname, "..");
const app = new App();
exitOnConfigError(() => {
  const loaded = loadConfig();
  new LocalStack(app, "local", { loaded, projectRoot, instance: process.env.NODESCALE_LOCAL_INSTANCE || undefined });
});
app.synth();
