#!/usr/bin/env bash
# Rendered by NodeScale: the only command the deploy key may run on this machine (the forced command of its
# authorized_keys line, through one sudoers rule). Reads one release from stdin, refuses it unless its SHA-256 is
# the one asked for, then runs the provision script for it: canary, switch, converge, verify (the machine agent).
# The ssh client sends "release <sha256>", or "secrets" with the service's secrets as JSON on stdin (written to a
# root-only file the machine agent reads), or, on a machine that ends TLS for its domain, "tls-export" (the
# certificate and key it serves, to stdout) and "tls-import" (one taken over from the machine it replaces, verified
# before use), or "prove <64 hex>" (the machine proves it holds its host proof key, before the push sends anything);
# nothing else is accepted.
set -euo pipefail
readonly BASE="{{base}}"
readonly MAX_BYTES={{maxBytes}}
readonly PROVISION_WAIT_SECONDS={{provisionWaitSeconds}}
readonly SECRETS_FILE="{{secretsFile}}"
readonly MAX_SECRETS_BYTES={{maxSecretsBytes}}
readonly NODE="{{node}}"
# Empty when this machine ends no TLS itself.
readonly TLS_DOMAIN="{{tlsDomain}}"
readonly TLS_LINK="{{tlsLink}}"
readonly TLS_IMPORTED="{{tlsImported}}"
readonly CERTIFICATE_SCRIPT="{{certificateScript}}"
# Empty: the system's CAs.
readonly TRUSTED_CA="{{trustedCa}}"
# A certificate is worth taking over only with at least this much validity left.
readonly TAKEOVER_MIN_SECONDS={{takeoverMinSeconds}}
# The key from this machine's user data with which it proves itself to the push (root 0600).
readonly HOST_PROOF_FILE="{{hostProofFile}}"

fail() { echo "nodescale-receive: $*" >&2; exit 1; }

request="${SSH_ORIGINAL_COMMAND:-}"
if [[ "${request}" != "secrets" && "${request}" != "tls-export" && "${request}" != "tls-import" && ! "${request}" =~ ^(release|prove)\ ([0-9a-f]{64})$ ]]; then
  echo "nodescale-receive: expected \"release <sha256>\", \"secrets\", \"tls-export\", \"tls-import\" or \"prove <challenge>\", got \"${request:0:80}\"" >&2
  exit 2
fi
sha="${BASH_REMATCH[2]:-}"

# A machine just created may still be provisioning (cloud-init runs after sshd starts).
waited=0
until [ -f "${BASE}/provisioned" ]; do
  [ "${waited}" -lt "${PROVISION_WAIT_SECONDS}" ] || fail "the machine did not finish provisioning within ${PROVISION_WAIT_SECONDS}s"
  sleep 5
  waited=$((waited + 5))
done

if [ "${request%% *}" = "prove" ]; then
  [ -s "${HOST_PROOF_FILE}" ] || { echo "nodescale-receive: this machine has no host proof key" >&2; exit 3; }
  # HMAC-SHA256 of the challenge under the key; the key never leaves this process.
  # shellcheck disable=SC2016 # the program is JavaScript, not shell
  exec "${NODE}" -e '
    const fs = require("node:fs"), crypto = require("node:crypto");
    process.stdout.write(crypto.createHmac("sha256", fs.readFileSync(process.argv[1])).update(process.argv[2]).digest("hex") + "\n");
  ' "${HOST_PROOF_FILE}" "${sha}"
fi

# A certificate chain for TLS_DOMAIN that chains to a trusted CA, valid TAKEOVER_MIN_SECONDS more, with its key.
usable_pair() { # usable_pair CHAIN KEY
  openssl x509 -noout -checkhost "${TLS_DOMAIN}" -in "$1" 2>/dev/null | grep -q " does match " || return 1
  openssl x509 -noout -checkend "${TAKEOVER_MIN_SECONDS}" -in "$1" >/dev/null 2>&1 || return 1
  [ "$(openssl x509 -noout -pubkey -in "$1")" = "$(openssl pkey -pubout -in "$2" 2>/dev/null)" ] || return 1
  local verify=(openssl verify -purpose sslserver -untrusted "$1")
  if [ -n "${TRUSTED_CA}" ]; then verify+=(-CAfile "${TRUSTED_CA}"); fi
  "${verify[@]}" "$1" >/dev/null 2>&1
}

if [ "${request}" = "tls-export" ]; then
  [ -n "${TLS_DOMAIN}" ] || { echo "nodescale-receive: this machine ends no TLS; no certificate to give" >&2; exit 3; }
  served="$(readlink "${TLS_LINK}" 2>/dev/null || true)"
  if [ -z "${served}" ] || ! usable_pair "${served}/fullchain.pem" "${served}/privkey.pem"; then
    echo "nodescale-receive: no certificate for ${TLS_DOMAIN} worth taking over here" >&2
    exit 3
  fi
  cat "${served}/fullchain.pem" "${served}/privkey.pem"
  exit 0
fi

if [ "${request}" = "tls-import" ]; then
  [ -n "${TLS_DOMAIN}" ] || fail "this machine ends no TLS; refused"
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  umask 077
  head -c 65537 > "${work}/pair.pem"
  if [ ! -s "${work}/pair.pem" ]; then
    echo "nodescale-receive: no certificate came; this machine gets its own once the domain reaches it"
    exit 0
  fi
  [ "$(stat -c %s "${work}/pair.pem")" -le 65536 ] || fail "the certificate is larger than 64 KiB; refused (nothing changed)"
  sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "${work}/pair.pem" > "${work}/fullchain.pem"
  openssl pkey -in "${work}/pair.pem" -out "${work}/privkey.pem" 2>/dev/null || fail "no private key came with the certificate; refused (nothing changed)"
  usable_pair "${work}/fullchain.pem" "${work}/privkey.pem" ||
    fail "the certificate is not one for ${TLS_DOMAIN} from a trusted CA with 30+ days left and its key; refused (nothing changed)"
  served="$(readlink "${TLS_LINK}" 2>/dev/null || true)"
  if [ -n "${served}" ] && usable_pair "${served}/fullchain.pem" "${served}/privkey.pem"; then
    echo "nodescale-receive: this machine already serves a certificate for ${TLS_DOMAIN}; kept"
    exit 0
  fi
  rm -rf "${TLS_IMPORTED}.new"
  install -d -m 0700 "${TLS_IMPORTED}.new"
  cp "${work}/fullchain.pem" "${work}/privkey.pem" "${TLS_IMPORTED}.new/"
  rm -rf "${TLS_IMPORTED}"
  mv -T "${TLS_IMPORTED}.new" "${TLS_IMPORTED}"
  "${CERTIFICATE_SCRIPT}" imported
  exit 0
fi

if [ "${request}" = "secrets" ]; then
  # A JSON object of strings, at most MAX_SECRETS_BYTES, written atomically 0600; the values are never printed.
  # shellcheck disable=SC2016 # the program is JavaScript, not shell
  head -c "$((MAX_SECRETS_BYTES + 1))" | "${NODE}" -e '
    const fs = require("node:fs"), path = require("node:path");
    const [file, max] = [process.argv[1], Number(process.argv[2])];
    const refuse = (why) => { process.stderr.write(`nodescale-receive: secrets ${why}; refused (nothing changed)\n`); process.exit(1); };
    const raw = fs.readFileSync(0);
    if (raw.length > max) refuse(`are larger than ${max} bytes`);
    let secrets;
    try { secrets = JSON.parse(raw.toString("utf8")); } catch { refuse("are not JSON"); }
    const names = secrets !== null && typeof secrets === "object" && !Array.isArray(secrets) ? Object.keys(secrets) : undefined;
    if (!names || names.some((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n) || typeof secrets[n] !== "string")) refuse("must be a JSON object of names to strings");
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(secrets), { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
    process.stdout.write(`nodescale-receive: ${names.length} secret(s) received\n`);
  ' "${SECRETS_FILE}" "${MAX_SECRETS_BYTES}"
  exit 0
fi

install -d -m 0755 "${BASE}/bundles"
# Bundles left by earlier pushes that failed go before a new one comes: only the current release's stays, so failing
# pushes can never fill the disk (at most the current bundle and this one are kept).
current="$(basename "$(readlink "${BASE}/current" 2>/dev/null || true)")"
find "${BASE}/bundles" -maxdepth 1 -type f -name '*.tar.gz' ! -name "${current:-none}.tar.gz" -delete
partial="${BASE}/bundles/${sha}.tar.gz.partial"
trap 'rm -f "${partial}"' EXIT
head -c "$((MAX_BYTES + 1))" > "${partial}"
size="$(stat -c %s "${partial}")"
[ "${size}" -le "${MAX_BYTES}" ] || fail "the release is larger than ${MAX_BYTES} bytes; refused"
actual="$(sha256sum "${partial}" | cut -d ' ' -f 1)"
[ "${actual}" = "${sha}" ] || fail "the release arrived with SHA-256 ${actual}, expected ${sha}; refused (nothing changed)"
mv -f "${partial}" "${BASE}/bundles/${sha}.tar.gz"
trap - EXIT
echo "nodescale-receive: release ${sha:0:12} received (${size} bytes); rolling it out"
exec env NODESCALE_BUNDLE_SHA256="${sha}" "${BASE}/bin/provision.sh"
