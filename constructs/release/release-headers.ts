import { templateText, withoutCommentLines } from "../template";

/**
 * The preload every process NodeScale runs loads first (VMs: PM2's `node_args`; pods: `NODE_OPTIONS`, from a
 * ConfigMap): answers name their process, host, machine and release, and idle keep-alive connections close on a
 * shutdown signal. One file, whichever target.
 */
export const RELEASE_HEADERS_FILE = "release-headers.cjs";

/**
 * The preload's source as shipped (to user data and ConfigMaps): its comment lines left out, its code unchanged. It
 * holds no "${" (no JavaScript template literal): in a ConfigMap's data Terraform would read one as a reference.
 */
export function releaseHeadersSource(): string {
  return withoutCommentLines(templateText("vm/release-headers.cjs"));
}
