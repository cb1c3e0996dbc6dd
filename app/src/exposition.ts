/** The family a sample line belongs to: a histogram's _bucket/_sum/_count and a summary's lines are its own. */
function sampleName(line: string): string {
  const end = line.search(/[{ ]/);
  return end === -1 ? line : line.slice(0, end);
}

interface Family {
  help?: string;
  type?: string;
  readonly samples: string[];
}

/**
 * Merges Prometheus text expositions of several processes into one: each metric family once (its HELP and TYPE
 * from the first text that has it), followed by the samples of every text. The processes label their own series
 * (pid, worker), so no two samples collide. Pure.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    let current: string | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (meta) {
        current = meta[2];
        const f = family(current);
        if (meta[1] === "HELP") f.help ??= line;
        else f.type ??= line;
        continue;
      }
      if (line.startsWith("#")) continue;
      // Samples follow their family's HELP/TYPE; one without (another exporter's style) is its own family.
      const name = sampleName(line);
      const owner = current !== undefined && (name === current || name.startsWith(`${current}_`)) ? current : name;
      family(owner).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help) out.push(f.help);
    if (f.type) out.push(f.type);
    out.push(...f.samples);
    out.push("");
  }
  return out.join("\n");
}
