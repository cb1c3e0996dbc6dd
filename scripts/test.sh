#!/usr/bin/env bash
# npm test: build (the tests run the compiled app, CLI and stacks), type-check, lint, then jest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
for tool in nginx shellcheck terraform; do
  command -v "${tool}" >/dev/null 2>&1 || { echo "npm test: ${tool} is not installed (see README: Testing)" >&2; exit 1; }
done
echo "== build"; npm run --silent build
echo "== typecheck"; npm run --silent typecheck
echo "== lint"; npx biome ci .
echo "== jest"
if [ "$#" -gt 0 ]; then exec npx jest --ci "$@"; fi
# Two lanes at once (jest alone runs one file at a time on 2 cores): the end-to-end deploys, one after another, and
# everything else. Each lane keeps its own output; the run fails if either does.
e2e_log="$(mktemp)"
trap 'rm -f "${e2e_log}"' EXIT
npx jest --ci test/e2e > "${e2e_log}" 2>&1 &
e2e_pid=$!
unit_status=0
npx jest --ci --testPathIgnorePatterns /test/e2e/ /test/containers/ /test/terraform/ || unit_status=$?
e2e_status=0
wait "${e2e_pid}" || e2e_status=$?
echo "== jest: end-to-end lane"
cat "${e2e_log}"
echo "== jest: other tests exit ${unit_status}, end-to-end exit ${e2e_status}"
[ "${unit_status}" -eq 0 ] && [ "${e2e_status}" -eq 0 ]
