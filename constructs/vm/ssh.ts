import { whatTheListOpens } from "../service/cidr";
import { invalidProp } from "../service/errors";

/**
 * SSH open to the whole internet is refused outright, however the list says it ("::/0", "0::/0", two /1 halves):
 * name your own addresses, or use SSM / the web console.
 */
export function assertSshNotWorldOpen(owner: string, sshCidrs: readonly string[]): void {
  const opens = whatTheListOpens(sshCidrs);
  if (opens !== undefined) {
    invalidProp(owner, "sshCidrs", sshCidrs, `covers ${opens}: SSH must not be open to the whole internet`);
  }
}
