import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { App, type IConstruct } from "../cdk";

/** A release as shipped to a VM: the app, its build output and production dependencies, packed reproducibly (packRelease). */
export interface AppBundle {
  /** The tar.gz bytes. */
  readonly data: Buffer;
  /** Their SHA-256: the release id the processes report and the health check waits for. */
  readonly sha256: string;
  /** Every path in the tarball, sorted. */
  readonly files: readonly string[];
  /** The entry file `node` runs, relative to the release's root. */
  readonly entry: string;
}

/**
 * The bundle as a file (content-addressed, under the app's synth folder), for a TerraformAsset to copy into
 * the stack's folder so that Terraform ships exactly these bytes.
 */
export function bundleFile(scope: IConstruct, bundle: AppBundle): string {
  return synthFile(scope, `${bundle.sha256}.tar.gz`, bundle.data);
}

/**
 * Bytes as a file under the app's synth folder (bundles/), named by the caller after their content (a hash), so an
 * existing file is already right; for a TerraformAsset to copy into the stack's folder.
 */
export function synthFile(scope: IConstruct, contentAddressedName: string, data: string | Buffer): string {
  const dir = join(App.of(scope).outdir, "bundles");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, contentAddressedName);
  if (!existsSync(file)) writeFileSync(file, data);
  return file;
}
