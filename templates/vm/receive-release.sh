#!/usr/bin/env bash
# Rendered by NodeScale: the only command the deploy key may run on this machine (the forced command of its
# authorized_keys line, through one sudoers rule). Reads one release from stdin, refuses it unless its SHA-256 is
# the one asked for, then runs the provision script for it: canary, switch, converge, verify (the machine agent).
# The ssh client sends "release <sha256>", or "secrets" with the service's secrets as JSON on stdin (written to a
# root-only file the machine agent reads); nothing else is accepted.
set -euo pipefail
readonly BASE="{{base}}"
readonly MAX_BYTES={{maxBytes}}
readonly PROVISION_WAIT_SECONDS={{provisionWaitSeconds}}
readonly SECRETS_FILE="{{secretsFile}}"
readonly MAX_SECRETS_BYTES={{maxSecretsBytes}}
readonly NODE="{{node}}"

fail() { echo "nodescale-receive: $*" >&2; exit 1; }

request="${SSH_ORIGINAL_COMMAND:-}"
if [[ "${request}" != "secrets" && ! "${request}" =~ ^release\ ([0-9a-f]{64})$ ]]; then
  echo "nodescale-receive: expected \"release <sha256>\" or \"secrets\", got \"${request:0:80}\"" >&2
  exit 2
fi
sha="${BASH_REMATCH[1]:-}"

# A machine just created may still be provisioning (cloud-init runs after sshd starts).
waited=0
until [ -f "${BASE}/provisioned" ]; do
  [ "${waited}" -lt "${PROVISION_WAIT_SECONDS}" ] || fail "the machine did not finish provisioning within ${PROVISION_WAIT_SECONDS}s"
  sleep 5
  waited=$((waited + 5))
done

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
