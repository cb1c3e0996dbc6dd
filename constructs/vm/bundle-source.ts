import type { AppBundle } from "../release/bundle";

/** Instance tags (read through IMDSv2) that point an EC2 machine at its current release. */
export const BUNDLE_URI_TAG = "NodeScaleBundle";
export const BUNDLE_SHA_TAG = "NodeScaleBundleSha256";
/**
 * The release bucket's name, as an instance tag: user data is gzipped at synth, so it cannot hold a Terraform
 * reference; the machine reads the name through IMDS (`instance_tag`, defined by s3BundleSource).
 */
export const BUCKET_TAG = "NodeScaleBucket";

/**
 * EC2: the release is named by instance tags (or, for an SSM rollout, by NODESCALE_BUNDLE_URI/_SHA256), so a new app version changes tags (in place) and not the
 * user data; the bundle itself comes from S3 through the instance role, with no 16 KiB limit.
 */
export function s3BundleSource(): string {
  return [
    // The AWS tools' own variables name other endpoints (a VPC endpoint; the tests' loopback stand-ins).
    `imds="\${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"`,
    `s3() { aws \${AWS_ENDPOINT_URL_S3:+--endpoint-url "$AWS_ENDPOINT_URL_S3"} s3 "$@"; }`,
    `imds_token="$(curl -fsS -X PUT "\${imds%/}/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')"`,
    `instance_tag() { curl -fsS -H "X-aws-ec2-metadata-token: \${imds_token}" "\${imds%/}/latest/meta-data/tags/instance/$1"; }`,
    // A rollout through SSM names the release itself; at boot the instance tags do.
    `BUNDLE_URI="\${NODESCALE_BUNDLE_URI:-$(instance_tag ${BUNDLE_URI_TAG})}"`,
    `BUNDLE_SHA256="\${NODESCALE_BUNDLE_SHA256:-$(instance_tag ${BUNDLE_SHA_TAG})}"`,
    "fetch_bundle() {",
    "  command -v aws >/dev/null 2>&1 || snap install aws-cli --classic",
    `  s3 cp --only-show-errors "\${BUNDLE_URI}" "$1"`,
    "}",
  ].join("\n");
}

/** Droplets: the bundle travels inside the user data (DigitalOcean allows 64 KiB). */
export function inlineBundleSource(bundle: AppBundle): string {
  const lines = bundle.data.toString("base64").match(/.{1,76}/g) ?? [];
  return [
    `BUNDLE_SHA256="${bundle.sha256}"`,
    "fetch_bundle() {",
    `  base64 -d > "$1" <<'NODESCALE_BUNDLE'`,
    ...lines,
    "NODESCALE_BUNDLE",
    "}",
  ].join("\n");
}

/**
 * EC2: the machine agent from the release bucket (user data has a 16 KiB limit), checked against its SHA-256 and
 * fetched only when the one in place differs.
 */
export function s3AgentInstall(key: string, sha256: string, dest: string): string {
  return [
    `if [ "$(sha256sum "${dest}" 2>/dev/null | cut -d' ' -f1)" != "${sha256}" ]; then`,
    "  command -v aws >/dev/null 2>&1 || snap install aws-cli --classic",
    `  s3 cp --only-show-errors "s3://$(instance_tag ${BUCKET_TAG})/${key}" "${dest}.tmp"`,
    `  echo "${sha256}  ${dest}.tmp" | sha256sum --check --strict --quiet -`,
    `  mv -f "${dest}.tmp" "${dest}"`,
    "fi",
  ].join("\n");
}

/**
 * EC2, one machine ending TLS itself: certbot's folder kept at `key` in the release bucket. `restoreState` (provision
 * lines) brings it back on a new machine before any certificate is requested; `saveState` (run by the certificate
 * script after each issuance and renewal, where `instance_tag` is not defined) reads the object's URI from a file
 * that `restoreState` writes.
 */
export function s3CertbotState(key: string): { restoreState: string; saveState: string[] } {
  const uriFile = "/etc/nodescale/tls/state-uri";
  return {
    restoreState: [
      `echo "s3://$(instance_tag ${BUCKET_TAG})/${key}" > ${uriFile}`,
      "if [ ! -d /etc/letsencrypt/live ]; then",
      "  command -v aws >/dev/null 2>&1 || snap install aws-cli --classic",
      `  if s3 cp --only-show-errors "$(cat ${uriFile})" /etc/nodescale/tls/state.tar.gz 2>/dev/null; then`,
      "    install -d -m 0755 /etc/letsencrypt",
      "    tar -xzf /etc/nodescale/tls/state.tar.gz -C /etc/letsencrypt",
      "  fi",
      "  rm -f /etc/nodescale/tls/state.tar.gz",
      "fi",
    ].join("\n"),
    saveState: [`tar -C /etc/letsencrypt -czf - . | aws s3 cp --only-show-errors - "$(cat ${uriFile})"`],
  };
}
