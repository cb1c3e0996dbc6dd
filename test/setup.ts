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
