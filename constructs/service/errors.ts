import type { z } from "zod";
import { SECRET_REF_RULE } from "./secrets";

/** Bad configuration, reported as one readable list; never a stack trace from inside cdktf. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

/** The closest known key, when it is close enough to be a likely typo. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/**
 * Keys one level down that match `key` (exactly, else closely), as paths from here: "context" under
 * kubernetes finds "cluster.context". An unknown key is often a known one put one level too high.
 */
function nestedGuesses(key: string, schema: z.ZodType, path: readonly PropertyKey[], known: readonly string[]): string[] {
  const below = known.map((parent) => ({ parent, keys: shapeKeysAt(schema, [...path, parent]) }));
  const exact = below.filter(({ keys }) => keys.includes(key)).map(({ parent }) => `${parent}.${key}`);
  if (exact.length > 0) return exact;
  return below.flatMap(({ parent, keys }) => {
    const guess = didYouMean(key, keys);
    return guess === undefined ? [] : [`${parent}.${guess}`];
  });
}

function shapeKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  // Walk the schema along the path to list the keys allowed where an unknown key was found.
  let node: unknown = schema;
  const unwrap = (s: unknown): unknown => {
    let cur = s as { def?: { type?: string; innerType?: unknown; in?: unknown; schema?: unknown } } | undefined;
    for (let i = 0; i < 10 && cur?.def; i++) {
      const def = cur.def;
      if (def.innerType) cur = def.innerType as typeof cur;
      else if (def.type === "pipe" && def.in) cur = def.in as typeof cur;
      else break;
    }
    return cur;
  };
  for (const key of path) {
    const obj = unwrap(node) as { shape?: Record<string, unknown> } | undefined;
    node = obj?.shape?.[String(key)];
  }
  const obj = unwrap(node) as { shape?: Record<string, unknown> } | undefined;
  return obj?.shape ? Object.keys(obj.shape) : [];
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * A value given where a secret's reference belongs is most likely the secret itself: never printed (an error lands
 * in terminals and CI logs). A reference gone wrong ("env:lower-case") is shown.
 */
function showInSecrets(value: unknown): string {
  if (typeof value === "string" && /^(ssm|secretsmanager|env):/.test(value)) return show(value);
  return typeof value === "string" ? `a value of ${value.length} characters (not shown)` : `a ${typeof value} (not shown)`;
}

/** One line per problem: the field path, the bad value (a secret's, never), and what is allowed. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown, schema: z.ZodType, prefix = ""): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const at = (path: readonly PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join(".") || "(top level)";
    if (issue.code === "unrecognized_keys") {
      const known = shapeKeysAt(schema, issue.path);
      for (const key of issue.keys) {
        const here = didYouMean(key, known);
        const guesses = here !== undefined ? [here] : nestedGuesses(key, schema, issue.path, known).map((p) => at([...issue.path, p]));
        const mean = guesses.length > 0 ? ` (did you mean ${guesses.map((g) => `"${g}"`).join(" or ")}?)` : "";
        lines.push(`${at([...issue.path, key])}: unknown key${mean}; allowed here: ${known.join(", ") || "none"}`);
      }
      continue;
    }
    const value = "input" in issue && issue.input !== undefined ? issue.input : valueAt(input, issue.path);
    lines.push(
      `${at(issue.path)}: ${issue.message === SECRET_REF_RULE ? showInSecrets(value) : show(value)} is not allowed: ${issue.message}`,
    );
  }
  return lines;
}

/** A construct prop that cannot work: thrown in the constructor, before anything reaches Terraform. */
export class InvalidPropError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidPropError";
  }
}

/** Throws `<Owner> <field>: <value> is not allowed: <what is allowed>`. */
export function invalidProp(owner: string, field: string, value: unknown, allowed: string): never {
  throw new InvalidPropError(`${owner} ${field}: ${JSON.stringify(value)} is not allowed: ${allowed}`);
}
