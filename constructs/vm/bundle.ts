import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { App, type IConstruct } from "../cdk";
import { InvalidPropError } from "../service/errors";

/** The app as shipped to a VM: a deterministic tar.gz of package.json and the built dist/. */
export interface AppBundle {
  readonly data: Buffer;
  readonly sha256: string;
  readonly files: readonly string[];
}

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100, "ascii");
  header.write("0000000\0", 108, "ascii");
  header.write("0000000\0", 116, "ascii");
  header.write(`${size.toString(8).padStart(11, "0")}\0`, 124, "ascii");
  header.write("00000000000\0", 136, "ascii"); // mtime 0: the same files give the same bytes
  header.write("        ", 148, "ascii");
  header.write("0", 156, "ascii");
  header.write("ustar\0", 257, "ascii");
  header.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return header;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const full = join(dir, entry);
      return statSync(full).isDirectory() ? listFiles(full) : [full];
    });
}

/** Packs `<appDir>/package.json` and `<appDir>/dist/**`; fails clearly when the app has not been built. */
export function bundleApp(appDir: string): AppBundle {
  const dist = join(appDir, "dist");
  if (!existsSync(join(dist, "main.js"))) {
    throw new InvalidPropError(`the app is not built: ${join(dist, "main.js")} is missing (run "npm run build")`);
  }
  const files = [join(appDir, "package.json"), ...listFiles(dist)].map((f) => relative(appDir, f));
  const chunks: Buffer[] = [];
  for (const file of files) {
    if (Buffer.byteLength(file) > 99)
      throw new InvalidPropError(`app bundle: path ${JSON.stringify(file)} is too long for a tar header (99 bytes)`);
    const body = readFileSync(join(appDir, file));
    chunks.push(tarHeader(file, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512, 0));
  }
  chunks.push(Buffer.alloc(1024, 0));
  const data = gzipSync(Buffer.concat(chunks), { level: 9 });
  return { data, sha256: createHash("sha256").update(data).digest("hex"), files };
}

/**
 * The bundle as a file (content-addressed, under the app's synth folder), for a TerraformAsset to copy into
 * the stack's folder so that Terraform ships exactly these bytes.
 */
export function bundleFile(scope: IConstruct, bundle: AppBundle): string {
  const dir = join(App.of(scope).outdir, "bundles");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${bundle.sha256}.tar.gz`);
  if (!existsSync(file)) writeFileSync(file, bundle.data);
  return file;
}
