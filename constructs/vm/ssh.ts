import { invalidProp } from "../service/errors";

/** CIDRs that mean "the whole internet". */
export const WORLD_CIDRS: readonly string[] = ["0.0.0.0/0", "::/0"];

/** SSH open to the whole internet is refused outright: name your own addresses, or use SSM / the web console. */
export function assertSshNotWorldOpen(owner: string, sshCidrs: readonly string[]): void {
  for (const cidr of sshCidrs) {
    if (WORLD_CIDRS.includes(cidr)) {
      invalidProp(owner, "sshCidrs", cidr, "SSH must not be open to the whole internet");
    }
  }
}
