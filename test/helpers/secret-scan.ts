import { gunzipSync } from "node:zlib";

// Looks for secret VALUES in what a stack produces, through every encoding that could hide one from a plain-text
// search: base64 (wrapped or not), gzip, the Droplet's gzipped stub (base64 of gzip inside a shell heredoc), a release
// tarball inside user data, and any nesting of those.

/** Where a value was found: the path of layers (field, then each decoding) that led to it. */
export interface SecretFinding {
  readonly secret: string;
  readonly where: string;
}

/** Runs of base64 at least this long are decoded (a line-wrapped run counts whole). */
const MIN_BASE64_CHARS = 24;
/** base64 characters, across line breaks (real ones, or escaped as in a JSON string). */
const BASE64_RUN = /(?:[A-Za-z0-9+/]|\r?\n|\\n)+=*/g;
/** Decoding goes at most this deep (base64 in gzip in base64 in ...). */
const MAX_DEPTH = 6;

/** Bytes as text for searching: UTF-8 when it is, else Latin-1 (a tar's headers and file bodies stay searchable). */
function asText(bytes: Buffer): string {
  const utf8 = bytes.toString("utf8");
  return utf8.includes("\uFFFD") ? bytes.toString("latin1") : utf8;
}

/** The layers beneath one text: each base64 run decoded, gunzipped when it is gzip, and their layers in turn. */
export function decodedLayers(text: string, where: string, depth = 0): { where: string; text: string }[] {
  const layers = [{ where, text }];
  if (depth >= MAX_DEPTH) return layers;
  for (const match of text.matchAll(BASE64_RUN)) {
    const lines = match[0].split(/\r?\n|\\n/).filter((line, i, all) => line !== "" || (i > 0 && i < all.length - 1));
    const run = lines.join("");
    if (run.length < MIN_BASE64_CHARS) continue;
    // Where the data starts in a run is not known (a word before it, a heredoc's delimiter line after it): the run is
    // decoded from each of the four alignments, from each gzip stream's start ("H4sI"), after its first line and
    // without its last.
    const starts = new Set([0, 1, 2, 3, ...[...run.matchAll(/H4sI/g)].map((m) => m.index)]);
    const ends = new Set([run.length]);
    if (lines.length > 1) {
      starts.add(lines[0].length);
      ends.add(run.length - lines[lines.length - 1].length);
    }
    const decoded = new Set<string>();
    for (const start of starts) {
      for (const end of ends) {
        if (end - start < MIN_BASE64_CHARS) continue;
        let bytes: Buffer = Buffer.from(run.slice(start, end), "base64");
        let how = `base64 at ${(match.index ?? 0) + start}`;
        if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
          try {
            bytes = gunzipSync(bytes);
            how += ", gunzipped";
          } catch {
            continue; // not a whole gzip stream here; another start or end is
          }
        }
        const text = asText(bytes);
        if (decoded.has(text)) continue;
        decoded.add(text);
        layers.push(...decodedLayers(text, `${where} > ${how}`, depth + 1));
      }
    }
  }
  return layers;
}

/** The base64 forms a value takes inside a longer base64 text, whatever its offset (the stable middle of each). */
function base64Forms(secret: string): string[] {
  return [0, 1, 2].map((offset) => {
    const encoded = Buffer.concat([Buffer.alloc(offset), Buffer.from(secret)]).toString("base64");
    const start = offset === 0 ? 0 : offset === 1 ? 2 : 3;
    // A last group padded with "=" mixes in whatever follows the value.
    return encoded.slice(start, encoded.length - (encoded.endsWith("=") ? 4 : 0));
  });
}

/** Every place `secrets` (values, at least 8 characters) occur in `text` or anything decoded from it. */
export function findSecrets(text: string, secrets: readonly string[], where = "text"): SecretFinding[] {
  for (const secret of secrets) if (secret.length < 8) throw new Error(`a secret to look for needs 8+ characters: ${secret.length}`);
  const findings: SecretFinding[] = [];
  for (const layer of decodedLayers(text, where)) {
    for (const secret of secrets) {
      if (layer.text.includes(secret)) findings.push({ secret, where: layer.where });
      else if (base64Forms(secret).some((form) => layer.text.includes(form))) findings.push({ secret, where: `${layer.where} (base64)` });
    }
  }
  return findings;
}

/** Every string in a synthesized stack (JSON) with its path, so a finding names the field. */
export function stringsOf(value: unknown, path = "$"): { where: string; text: string }[] {
  if (typeof value === "string") return [{ where: path, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, `${path}[${i}]`));
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => stringsOf(v, `${path}.${k}`));
  return [];
}

/** Scans a synthesized stack: the JSON as written, and every string in it decoded (user data, outputs, ...). */
export function findSecretsInSynth(json: string, secrets: readonly string[]): SecretFinding[] {
  return [
    ...findSecrets(json, secrets, "synthesized JSON"),
    ...stringsOf(JSON.parse(json)).flatMap(({ where, text }) => findSecrets(text, secrets, where)),
  ];
}
