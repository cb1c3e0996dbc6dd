import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Testing } from "../constructs/cdk";

// Adds cdktf's matchers (toHaveResource, toHaveResourceWithProperties, toBeValidTerraform, ...).
Testing.setupJest();

// cdktf's Testing makes a temporary output folder per app and synth (fs.mkdtempSync(tmpdir()/cdktf.outdir.))
// and never removes it: record them and remove them when this test file is done.
const made: string[] = [];
const mkdtempSync = fs.mkdtempSync;
const prefix = join(tmpdir(), "cdktf.outdir.");
fs.mkdtempSync = ((path: string, options?: unknown) => {
  const dir = mkdtempSync(path, options as BufferEncoding);
  if (path === prefix) made.push(dir);
  return dir;
}) as typeof fs.mkdtempSync;

afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

// Commands name NodeScale's own files by absolute path (the health CLI, the local runner, PM2): snapshots show
// them relative to the package, so they match in any clone.
const packageRoot = join(__dirname, "..");
expect.addSnapshotSerializer({
  test: (value: unknown) => typeof value === "string" && value.includes(packageRoot),
  serialize: (value: string, config, indentation, depth, refs, printer) =>
    printer(value.split(packageRoot).join("<nodescale>"), config, indentation, depth, refs),
});
