#!/usr/bin/env bash
# npm run test:terraform: the stacks as the real Terraform and its providers see them (docs/terraform.md). Installs
# the pinned tools first (scripts/terraform-tools.sh: idempotent, minutes when the Go caches are warm, most of an hour
# cold), builds, then runs the tests under test/terraform/ (not part of `npm test`). Arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
bin="$(bash scripts/terraform-tools.sh | tail -n 1)"
export PATH="${bin}:${PATH}"
echo "== build"; npm run --silent build
echo "== jest (test/terraform)"
NODESCALE_TERRAFORM=1 exec npx jest --ci --verbose "${@:-test/terraform}"
