// Reading a synthesized stack in tests: its resources by type, and the inventory the snapshots guard.

export type Resources = Record<string, Record<string, Record<string, unknown>>>;

/** A synthesized cdktf stack, as the tests read it. */
export interface Synth {
  resource: Resources;
  data: Resources;
  provider: Record<string, Record<string, unknown>[]>;
  output: Record<string, { value: string; sensitive?: boolean }>;
  locals?: Record<string, unknown>;
  terraform?: {
    backend?: Record<string, Record<string, unknown>>;
    required_providers?: Record<string, { source: string; version: string }>;
  };
}

/** Every resource of one type. */
export function all(resources: Resources | undefined, type: string): Record<string, unknown>[] {
  return Object.values(resources?.[type] ?? {});
}

/** The one resource of a type; more or fewer is a failure worth reading. */
export function only(resources: Resources | undefined, type: string): Record<string, unknown> {
  const found = all(resources, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
}

/**
 * What a stack's snapshot guards: the address of every resource and data source (an address is a resource's identity
 * in Terraform state, so a renamed construct id replaces the resource), its providers with their pinned versions, and
 * its outputs. The resources' contents are asserted property by property, so a chart or AMI bump does not churn
 * thousands of snapshot lines.
 */
export function inventory(parsed: Partial<Synth>): Record<string, string[]> {
  const addresses = (block: Resources | undefined, prefix = "") =>
    Object.entries(block ?? {})
      .flatMap(([type, byName]) => Object.keys(byName).map((name) => `${prefix}${type}.${name}`))
      .sort();
  return {
    resources: addresses(parsed.resource),
    data: addresses(parsed.data, "data."),
    providers: Object.entries(parsed.terraform?.required_providers ?? {})
      .map(([name, { source, version }]) => `${name}: ${source} ${version}`)
      .sort(),
    outputs: Object.keys(parsed.output ?? {}).sort(),
  };
}
