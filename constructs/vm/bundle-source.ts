import type { AppBundle } from "../release/bundle";
import { CERTIFICATE_TAKEOVER_MIN_SECONDS, MACHINE_TLS } from "./acme";

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

/** Where s3CertificateState keeps its files on the machine, and what it trusts. */
export interface CertificateStateOptions {
  /** The domain the certificate must be for. */
  readonly domain: string;
  /** @default MACHINE_TLS.imported */
  readonly imported?: string;
  /** @default MACHINE_TLS.letsencryptDir */
  readonly letsencryptDir?: string;
  /** The file that holds the object's URI for saveState. @default "/etc/nodescale/tls/state-uri" */
  readonly uriFile?: string;
  /** A CA bundle the certificate must chain to. @default - the system's CAs */
  readonly trustedCa?: string;
}

/**
 * EC2, one machine ending TLS itself: the certificate it serves (its chain and key, nothing else) kept at `key` in the
 * release bucket, so its replacement serves the same one from its first answer. `saveState` (run by the certificate
 * script after each issuance and renewal, as root) writes it; `restoreState` (provision lines, as root) takes it back
 * only as a certificate taken over (`MACHINE_TLS.imported`, served until the machine has its own), and only when the
 * chain verifies to a trusted CA for the domain with 30+ days left and the key matches it. No certbot configuration,
 * account or hook ever comes back from the bucket: whoever could write the object can at most plant a pair the CA
 * signed for this domain, which is no gain over holding it. (Why a CA's signature and no HMAC: docs/security.md.)
 */
export function s3CertificateState(key: string, options: CertificateStateOptions): { restoreState: string; saveState: string[] } {
  const uriFile = options.uriFile ?? "/etc/nodescale/tls/state-uri";
  const imported = options.imported ?? MACHINE_TLS.imported;
  const live = `${options.letsencryptDir ?? MACHINE_TLS.letsencryptDir}/live/${options.domain}`;
  const verify = `openssl verify -purpose sslserver${options.trustedCa !== undefined ? ` -CAfile ${options.trustedCa}` : ""}`;
  return {
    restoreState: [
      `echo "s3://$(instance_tag ${BUCKET_TAG})/${key}" > ${uriFile}`,
      `if [ ! -f ${live}/fullchain.pem ] && [ ! -f ${imported}/fullchain.pem ]; then`,
      "  command -v aws >/dev/null 2>&1 || snap install aws-cli --classic",
      '  tls_work="$(mktemp -d)"',
      `  if s3 cp --only-show-errors "$(cat ${uriFile})" "\${tls_work}/pair.pem" 2>/dev/null; then`,
      '    if [ "$(stat -c %s "${tls_work}/pair.pem")" -le 65536 ] &&',
      `      sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "\${tls_work}/pair.pem" > "\${tls_work}/fullchain.pem" &&`,
      '      openssl pkey -in "${tls_work}/pair.pem" -out "${tls_work}/privkey.pem" 2>/dev/null &&',
      `      openssl x509 -noout -checkhost ${options.domain} -in "\${tls_work}/fullchain.pem" 2>/dev/null | grep -q " does match " &&`,
      `      openssl x509 -noout -checkend ${CERTIFICATE_TAKEOVER_MIN_SECONDS} -in "\${tls_work}/fullchain.pem" >/dev/null 2>&1 &&`,
      '      [ "$(openssl x509 -noout -pubkey -in "${tls_work}/fullchain.pem")" = "$(openssl pkey -pubout -in "${tls_work}/privkey.pem")" ] &&',
      `      ${verify} -untrusted "\${tls_work}/fullchain.pem" "\${tls_work}/fullchain.pem" >/dev/null 2>&1; then`,
      `      rm -rf ${imported}.new`,
      `      install -d -m 0700 ${imported}.new`,
      `      cp "\${tls_work}/fullchain.pem" "\${tls_work}/privkey.pem" ${imported}.new/`,
      `      mv -T ${imported}.new ${imported}`,
      `      log "took over the certificate for ${options.domain} kept by the machine this one replaces"`,
      "    else",
      `      log "the kept certificate is not one for ${options.domain} from a trusted CA with 30+ days left and its key; not used"`,
      "    fi",
      "  fi",
      '  rm -rf "${tls_work}"',
      "fi",
    ].join("\n"),
    saveState: [`cat "\${LIVE}/fullchain.pem" "\${LIVE}/privkey.pem" | aws s3 cp --only-show-errors - "$(cat ${uriFile})"`],
  };
}
