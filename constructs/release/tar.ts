import { gunzipSync, gzipSync } from "node:zlib";

/** One entry of a reproducible tarball: a regular file (with its bytes) or a symbolic link. */
export type TarEntry =
  | { readonly path: string; readonly kind: "file"; readonly executable: boolean; readonly data: Buffer }
  | { readonly path: string; readonly kind: "symlink"; readonly target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/**
 * A ustar header with every varying field fixed: owner 0:0, no user or group names, mtime 0, so the same entries
 * give the same bytes on any machine.
 */
function header(name: string, type: "0" | "2" | "x", size: number, mode: number, linkName = ""): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type, 156, "ascii");
  h.write(linkName, 157, 100, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

const pad = (length: number) => Buffer.alloc((BLOCK - (length % BLOCK)) % BLOCK, 0);

/** A PAX record "<len> key=value\n", whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

/**
 * Packs the entries, sorted by path, into a gzip'd tarball. Paths or link targets longer than ustar allows go
 * in a PAX extended header (node_modules paths often do), which GNU tar and bsdtar read.
 */
export function reproducibleTarGz(entries: readonly TarEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const entry of sorted) {
    const target = entry.kind === "symlink" ? entry.target : "";
    const long = Buffer.byteLength(entry.path) > 100 || Buffer.byteLength(target) > 100;
    if (long) {
      const pax = Buffer.from(
        (Buffer.byteLength(entry.path) > 100 ? paxRecord("path", entry.path) : "") +
          (Buffer.byteLength(target) > 100 ? paxRecord("linkpath", target) : ""),
        "utf8",
      );
      chunks.push(header("PaxHeader", "x", pax.length, 0o644), pax, pad(pax.length));
    }
    // With a PAX path, the ustar name is only a fallback for old readers: a truncated, still valid name.
    const name = Buffer.from(entry.path, "utf8").subarray(0, 100).toString("utf8");
    if (entry.kind === "file") {
      chunks.push(header(name, "0", entry.data.length, entry.executable ? 0o755 : 0o644), entry.data, pad(entry.data.length));
    } else {
      chunks.push(header(name, "2", 0, 0o777, Buffer.from(target, "utf8").subarray(0, 100).toString("utf8")));
    }
  }
  chunks.push(Buffer.alloc(2 * BLOCK, 0));
  // Node's gzip header has no name and mtime 0; its OS byte depends on the platform zlib was built for, so it is
  // fixed to 3 (Unix): the same entries give the same bytes on Linux, macOS and Windows.
  const gz = gzipSync(Buffer.concat(chunks), { level: 9 });
  gz[9] = 3;
  return gz;
}

const text = (block: Buffer, start: number, length: number) => {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
};

/** The entries of a tarball written by reproducibleTarGz (files, symlinks, PAX long names), in their order. */
export function readTarGz(data: Buffer): TarEntry[] {
  const tar = gunzipSync(data);
  const entries: TarEntry[] = [];
  let pax: Record<string, string> = {};
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = Number.parseInt(text(h, 124, 12).trim() || "0", 8);
    const type = text(h, 156, 1) || "0";
    const body = tar.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = Object.fromEntries([...body.toString("utf8").matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)].map((m) => [m[1], m[2]] as [string, string]));
      continue;
    }
    const path = pax.path ?? text(h, 0, 100);
    if (type === "0") {
      const mode = Number.parseInt(text(h, 100, 8).trim(), 8);
      entries.push({ path, kind: "file", executable: (mode & 0o111) !== 0, data: Buffer.from(body) });
    } else if (type === "2") entries.push({ path, kind: "symlink", target: pax.linkpath ?? text(h, 157, 100) });
    else throw new Error(`readTarGz: entry ${path} has type ${JSON.stringify(type)}; only files and symlinks are expected`);
    pax = {};
  }
  return entries;
}
