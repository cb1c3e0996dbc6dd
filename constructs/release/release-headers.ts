import { templateText } from "../template";

/**
 * The preload every process NodeScale runs loads first (VMs: PM2's `node_args`; pods: `NODE_OPTIONS`, from a
 * ConfigMap): answers name their process, host, machine and release, and idle keep-alive connections close on a
 * shutdown signal. One file, whichever target.
 */
export const RELEASE_HEADERS_FILE = "release-headers.cjs";

/** The preload's source, as shipped. */
export function releaseHeadersSource(): string {
  return templateText("vm/release-headers.cjs");
}
