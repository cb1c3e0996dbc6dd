import { z } from "zod";

// Rules shared by the config schema (stacks/) and the constructs' own prop checks: each written once here.

/** A DNS-1123 label: what Kubernetes accepts as a name, and safe for PM2, Nginx and cloud resource names. */
export const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A zod whole number in [min, max] whose every failure says the range and what the number is for. */
export function wholeNumber(min: number, max: number, what: string) {
  const error = `must be a whole number ${min}-${max} (${what})`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const IMAGE_REF = /^([a-z0-9][a-z0-9._\-/:]*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@sha256:([a-f0-9]{64}))?$/;

/**
 * An image reference that always means the same bytes, or as near as a registry allows: a digest
 * (`repo@sha256:…`, with or without a tag), or a fixed tag that is not `latest`. Untagged means `latest`.
 */
export function isPinnedImage(ref: string): boolean {
  // A repository known only at apply (a cdktf token, e.g. a registry URL) is judged by its tag or digest; a digest
  // known only at apply (a push's sha256_digest) after "@" is a digest.
  const resolved = ref
    .replace(/@\$\{TfToken\[[A-Z0-9_.]+\]\}$/, `@sha256:${"0".repeat(64)}`)
    .replace(/\$\{TfToken\[[A-Z0-9_.]+\]\}/g, "token");
  const match = IMAGE_REF.exec(resolved);
  if (match === null) return false;
  const [, , tag, digest] = match;
  return digest !== undefined || (tag !== undefined && tag !== "latest");
}

/** What a pinned image looks like, for error messages. */
export const PINNED_IMAGE_RULE = 'pinned by a fixed tag or digest (not "latest", not untagged), such as "ghcr.io/acme/api:1.4.2"';

/** One OpenSSH public key line (the `.pub` file): a private key or a wrapped line does not match. */
export const SSH_PUBLIC_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( [^\n\r"]*)?$/;

/** What an SSH public key looks like, for error messages. */
export const SSH_PUBLIC_KEY_RULE = "must be one OpenSSH public key line such as ssh-ed25519 AAAA... (the .pub file; never the private key)";

/** HSTS max-age wherever NodeScale ends TLS for a domain (Nginx, the ALB, the pods' preload): two years, as Mozilla's guidelines give it. */
export const HSTS_MAX_AGE_SECONDS = 63_072_000;
