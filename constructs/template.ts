import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "./package-files";

/** A template that cannot be rendered: names the template and the placeholder at fault. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

const cache = new Map<string, string>();

/** The absolute path of templates/<name>. */
export function templatePath(name: string): string {
  return join(PACKAGE_ROOT, "templates", name);
}

/** The raw text of templates/<name>. */
export function templateText(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(templatePath(name), "utf8");
    cache.set(name, text);
  }
  return text;
}

/**
 * Fills `{{key}}` placeholders. Every placeholder must get a value and every value must be used,
 * so a renamed field fails here, at synth time, instead of in a half-configured machine.
 */
export function fillTemplate(name: string, text: string, values: Readonly<Record<string, string | number>>): string {
  const used = new Set<string>();
  const out = text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new TemplateError(`template ${name}: no value for placeholder {{${key}}}`);
    used.add(key);
    return String(value);
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new TemplateError(`template ${name}: values given for placeholders it does not have: ${unused.join(", ")}`);
  return out;
}

export function renderTemplate(name: string, values: Readonly<Record<string, string | number>>): string {
  return fillTemplate(name, templateText(name), values);
}

/**
 * JavaScript with its whole-line comments (`//` lines and `/* ... *\/` blocks that start a line) left out, the code
 * unchanged: for sources shipped inside size-limited user data. Only for sources without multi-line template strings.
 */
export function withoutCommentLines(source: string): string {
  const kept: string[] = [];
  let inComment = false;
  for (const line of source.split("\n")) {
    const text = line.trim();
    if (inComment) {
      inComment = !text.endsWith("*/");
      continue;
    }
    if (text.startsWith("/*")) {
      inComment = !text.endsWith("*/");
      continue;
    }
    if (text.startsWith("//")) continue;
    kept.push(line);
  }
  return kept.join("\n");
}

/**
 * Values spliced into Nginx or shell text must not be able to end a directive or a quoted string.
 * Returns the value, or throws naming the field.
 */
export function safeToken(field: string, value: string, pattern = /^[A-Za-z0-9_./:@\-[\]]+$/): string {
  if (!pattern.test(value)) {
    throw new TemplateError(
      `${field}: ${JSON.stringify(value)} cannot go into a config file (allowed: letters, digits and . _ - / : @ [ ])`,
    );
  }
  return value;
}

/** A shell script or unit without its whole-line comments (the shebang kept): the twin of withoutCommentLines. */
export function withoutShellCommentLines(text: string): string {
  return text
    .split("\n")
    .filter((line, i) => (i === 0 && line.startsWith("#!")) || !/^\s*#/.test(line))
    .join("\n");
}
