import { isIPv4, isIPv6 } from "node:net";

// CIDR lists read as the address ranges they are, not as strings: "0.0.0.0/0" is not the only way to say "everyone".

/** One CIDR as the range of addresses it covers. */
export interface AddressRange {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

const BITS = { 4: 32n, 6: 128n } as const;

function ipv4Value(address: string): bigint {
  return address.split(".").reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6Value(address: string): bigint {
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  let text = address;
  if (tail) {
    const v4 = ipv4Value(tail[1]);
    text = `${address.slice(0, -tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = rest === undefined ? [] : rest ? rest.split(":") : [];
  const groups = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((value, group) => (value << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

/** The range a CIDR covers (host bits ignored, as AWS and DigitalOcean do), or undefined when it is not a CIDR. */
export function parseCidr(cidr: string): AddressRange | undefined {
  const match = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr);
  if (match === null) return undefined;
  const [, address, prefixText] = match;
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) return undefined;
  const prefix = BigInt(prefixText);
  const bits = BITS[family];
  if (prefix > bits) return undefined;
  const value = family === 4 ? ipv4Value(address) : ipv6Value(address);
  const size = 1n << (bits - prefix);
  const first = value - (value % size);
  return { family, first, last: first + size - 1n };
}

/**
 * The address families ("IPv4", "IPv6") a list of CIDRs covers completely, however it is written: "0.0.0.0/0",
 * "::/0", "0::/0", two "/1" halves, or any set of blocks that leaves no address out. Unparseable entries are ignored
 * here (the schema refuses them on their own).
 */
export function familiesCoveredEntirely(cidrs: readonly string[]): ("IPv4" | "IPv6")[] {
  const covered: ("IPv4" | "IPv6")[] = [];
  for (const family of [4, 6] as const) {
    const ranges = cidrs
      .map(parseCidr)
      .filter((r): r is AddressRange => r !== undefined && r.family === family)
      .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    let next = 0n;
    for (const range of ranges) {
      if (range.first > next) break;
      if (range.last + 1n > next) next = range.last + 1n;
    }
    if (next === 1n << BITS[family]) covered.push(family === 4 ? "IPv4" : "IPv6");
  }
  return covered;
}

/** "every IPv4 address" / "every IPv4 and IPv6 address", or undefined when the list leaves some out. */
export function whatTheListOpens(cidrs: readonly string[]): string | undefined {
  const families = familiesCoveredEntirely(cidrs);
  return families.length === 0 ? undefined : `every ${families.join(" and ")} address`;
}
