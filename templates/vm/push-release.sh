#!/usr/bin/env bash
# NodeScale, deployer side: pushes one release to a machine over SSH as its restricted deploy user and waits
# while the machine rolls it out (the machine agent's canary, switch, converge, verify). Retries while the machine
# is still booting; the machine's own verdict (any exit but ssh's 255) is final. Runs from Terraform (local-exec);
# every input arrives in the environment, never spliced into shell text.
set -euo pipefail
: "${NODESCALE_HOST:?}" "${NODESCALE_KEY_FILE:?}" "${NODESCALE_SHA256:?}" "${NODESCALE_BUNDLE:?}" "${NODESCALE_MACHINE_ID:?}"
user="${NODESCALE_USER:-nodescale-deploy}"
port="${NODESCALE_SSH_PORT:-22}"
wait_seconds="${NODESCALE_CONNECT_WAIT_SECONDS:-600}"

key_file="${NODESCALE_KEY_FILE/#\~/${HOME}}"
[ -r "${key_file}" ] || { echo "nodescale-push: cannot read the deploy key ${key_file}" >&2; exit 1; }
[ -r "${NODESCALE_BUNDLE}" ] || { echo "nodescale-push: no release file ${NODESCALE_BUNDLE}" >&2; exit 1; }
[[ "${NODESCALE_MACHINE_ID}" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "nodescale-push: bad machine id ${NODESCALE_MACHINE_ID}" >&2; exit 1; }
known_hosts_dir="${NODESCALE_KNOWN_HOSTS_DIR:-${HOME}/.nodescale/known_hosts}"
mkdir -p "${known_hosts_dir}"

# One known-hosts file per machine: its key is pinned at the first connection (proven with NODESCALE_HOST_PROOF when
# given, below), and a changed key on the same machine fails.
options=(
  -i "${key_file}" -p "${port}"
  -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=8
  -o StrictHostKeyChecking=accept-new -o "UserKnownHostsFile=${known_hosts_dir}/${NODESCALE_MACHINE_ID}"
)
started="${SECONDS}"

# The service's secrets (NODESCALE_SECRETS: "NAME=VARIABLE ..."): read from this shell's environment by a node
# process that writes them as JSON straight into ssh's stdin; no value is in an argument, a variable of this script
# or a file on this machine.
# shellcheck disable=SC2016 # the program is JavaScript, not shell
secrets_json='
  const refs = (process.env.NODESCALE_SECRETS || "").split(/\s+/).filter(Boolean).map((p) => p.split("="));
  const missing = refs.filter(([, v]) => !process.env[v]).map(([n, v]) => `service.secrets.${n} (env:${v})`);
  if (missing.length > 0) { process.stderr.write(`nodescale-push: not set in the shell that deploys: ${missing.join(", ")}\n`); process.exit(1); }
  if (process.argv[1] !== "check") process.stdout.write(JSON.stringify(Object.fromEntries(refs.map(([n, v]) => [n, process.env[v]]))));
'
# One request to the machine's receiver, its stdin produced afresh for every attempt (the secrets' JSON, or the
# release file). Retries while ssh itself fails (255: no route, refused, not yet accepting the key; the machine may
# still be booting); any other exit is the machine's verdict, and the push ends with it, naming WHAT and what follows.
send() { # send REQUEST SOURCE WHAT CONSEQUENCE
  local request="$1" source="$2" what="$3" consequence="$4" status
  # The request is meant to expand here: the machine's forced command reads it, no shell runs it there.
  # shellcheck disable=SC2029
  until if [ "${source}" = secrets ]; then node -e "${secrets_json}" send; else cat "${source}"; fi |
    ssh "${options[@]}" "${user}@${NODESCALE_HOST}" "${request}"; do
    status=$?
    if [ "${status}" -ne 255 ]; then
      echo "nodescale-push: ${NODESCALE_HOST} refused ${what} (exit ${status}); ${consequence}" >&2
      exit "${status}"
    fi
    if [ $((SECONDS - started)) -ge "${wait_seconds}" ]; then
      echo "nodescale-push: could not reach ${user}@${NODESCALE_HOST}:${port} over SSH within ${wait_seconds}s (is this machine's address in sshCidrs?)" >&2
      exit 1
    fi
    sleep 5
  done
}

# Before anything is sent: the machine proves it holds the host proof key from its user data (HMAC-SHA256 of a fresh
# challenge). The host key seen in that session is the one pinned in this machine's known-hosts file for every step
# after it; a machine that cannot prove it (someone in the path at a first deploy) gets nothing, and its key is
# forgotten.
if [ -n "${NODESCALE_HOST_PROOF:-}" ]; then
  challenge="$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex"))')"
  # shellcheck disable=SC2016 # the program is JavaScript, not shell
  expected="$(node -e 'process.stdout.write(require("node:crypto").createHmac("sha256", process.env.NODESCALE_HOST_PROOF).update(process.argv[1]).digest("hex"))' "${challenge}")"
  proof_file="$(mktemp)"
  trap 'rm -f "${proof_file}"' EXIT
  echo "nodescale-push: ${user}@${NODESCALE_HOST}:${port} proves it is the machine Terraform created"
  # The request is meant to expand here: the machine's forced command reads it, no shell runs it there.
  # shellcheck disable=SC2029
  until ssh "${options[@]}" "${user}@${NODESCALE_HOST}" "prove ${challenge}" < /dev/null > "${proof_file}"; do
    status=$?
    if [ "${status}" -ne 255 ]; then break; fi
    if [ $((SECONDS - started)) -ge "${wait_seconds}" ]; then
      echo "nodescale-push: could not reach ${user}@${NODESCALE_HOST}:${port} over SSH within ${wait_seconds}s (is this machine's address in sshCidrs?)" >&2
      exit 1
    fi
    sleep 5
  done
  answer="$(head -c 200 "${proof_file}" | tr -d '\n')"
  rm -f "${proof_file}"
  if [ "${answer}" != "${expected}" ]; then
    rm -f "${known_hosts_dir}/${NODESCALE_MACHINE_ID}"
    echo "nodescale-push: ${NODESCALE_HOST} did not prove it holds this deploy's host proof key: it may not be the machine Terraform created (someone in the path?); nothing was sent, its host key is forgotten" >&2
    exit 1
  fi
fi

if [ -n "${NODESCALE_SECRETS:-}" ]; then
  node -e "${secrets_json}" check
  echo "nodescale-push: secrets to ${user}@${NODESCALE_HOST}:${port}"
  send secrets secrets "the secrets" "nothing was rolled out"
fi

echo "nodescale-push: release ${NODESCALE_SHA256:0:12} to ${user}@${NODESCALE_HOST}:${port}"
send "release ${NODESCALE_SHA256}" "${NODESCALE_BUNDLE}" "release ${NODESCALE_SHA256:0:12}" "it keeps serving its previous release"
echo "nodescale-push: ${NODESCALE_HOST} serves release ${NODESCALE_SHA256:0:12}"

# The certificate of the machine being replaced (NODESCALE_TLS_FROM, the stable address that still points at it),
# piped from it to the new machine through this shell, never stored here. Its host key is not checked: nothing is
# sent to it, and the new machine uses what comes back only if it is for the domain, from a trusted CA, with its key.
if [ -n "${NODESCALE_TLS_FROM:-}" ]; then
  echo "nodescale-push: the domain's certificate from ${NODESCALE_TLS_FROM} (the machine being replaced)"
  export_errors="$(mktemp)"
  trap 'rm -f "${export_errors}"' EXIT
  set +e
  ssh -i "${key_file}" -p "${NODESCALE_TLS_FROM_PORT:-${port}}" -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    "${user}@${NODESCALE_TLS_FROM}" tls-export 2>"${export_errors}" |
    ssh "${options[@]}" "${user}@${NODESCALE_HOST}" tls-import
  statuses=("${PIPESTATUS[@]}")
  set -e
  if [ "${statuses[0]}" -ne 0 ]; then
    # No machine there yet (a first deploy), or none with a certificate worth taking: the new one gets its own.
    echo "nodescale-push: none taken over ($(tr -s '\r\n' '  ' < "${export_errors}" | sed 's/ *$//'))"
  elif [ "${statuses[1]}" -ne 0 ]; then
    echo "nodescale-push: ${NODESCALE_HOST} refused the certificate of the machine it replaces (exit ${statuses[1]}); the address stays with the old machine" >&2
    exit 1
  fi
fi
