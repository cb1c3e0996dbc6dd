#!/usr/bin/env bash
# Rendered by NodeScale: the only command the deploy key may run on this machine (the forced command of its
# authorized_keys line, through one sudoers rule). Reads one release from stdin, refuses it unless its SHA-256 is
# the one asked for, then runs the provision script for it: canary, switch, converge, verify (the machine agent).
# The ssh client sends "release <sha256>"; nothing else is accepted.
set -euo pipefail
readonly BASE="{{base}}"
readonly MAX_BYTES={{maxBytes}}
readonly PROVISION_WAIT_SECONDS={{provisionWaitSeconds}}

fail() { echo "nodescale-receive: $*" >&2; exit 1; }

request="${SSH_ORIGINAL_COMMAND:-}"
if [[ ! "${request}" =~ ^release\ ([0-9a-f]{64})$ ]]; then
  echo "nodescale-receive: expected \"release <sha256>\", got \"${request:0:80}\"" >&2
  exit 2
fi
sha="${BASH_REMATCH[1]}"

# A machine just created may still be provisioning (cloud-init runs after sshd starts).
waited=0
until [ -f "${BASE}/provisioned" ]; do
  [ "${waited}" -lt "${PROVISION_WAIT_SECONDS}" ] || fail "the machine did not finish provisioning within ${PROVISION_WAIT_SECONDS}s"
  sleep 5
  waited=$((waited + 5))
done

install -d -m 0755 "${BASE}/bundles"
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
