/**
 * The Node.js LTS lines NodeScale runs, each pinned to one patch release and the SHA-256 of its linux-x64 tarball
 * (what VMs download and verify; the container base image is the official image of the same release).
 *
 * Checksums as published in https://nodejs.org/dist/v<version>/SHASUMS256.txt, read from the table generated
 * from those files in bazel-contrib/rules_nodejs (nodejs/private/node_versions.bzl, commit 87554dd, 2026-04-16);
 * 22.22.0's entry there matches SHASUMS256.txt as quoted elsewhere. Node.js 20 reached end of life on
 * 2026-04-30, so it is not offered. Raising a patch release: change the version and its checksum together.
 */
export const NODE_RELEASES = {
  22: { version: "22.22.2", linuxX64Sha256: "88fd1ce767091fd8d4a99fdb2356e98c819f93f3b1f8663853a2dee9b438068a" },
  24: { version: "24.15.0", linuxX64Sha256: "472655581fb851559730c48763e0c9d3bc25975c59d518003fc0849d3e4ba0f6" },
} as const;

/** A supported Node.js LTS major. */
export type NodeMajor = keyof typeof NODE_RELEASES;

/** One pinned Node.js release. */
export interface NodeRelease {
  /** Full version, e.g. "22.22.2". */
  readonly version: string;
  /** SHA-256 of node-v<version>-linux-x64.tar.xz. */
  readonly linuxX64Sha256: string;
}

/** The LTS line used when the config names none. */
export const DEFAULT_NODE_MAJOR: NodeMajor = 22;

/** The supported majors, ascending. */
export const SUPPORTED_NODE_MAJORS: readonly NodeMajor[] = (Object.keys(NODE_RELEASES).map(Number) as NodeMajor[]).sort((a, b) => a - b);

/** The official image of a release, the base of every NodeScale container. */
export function nodeImage(release: NodeRelease): string {
  return `node:${release.version}-bookworm-slim`;
}
