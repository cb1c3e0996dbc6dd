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
echo "== jest"; npx jest "$@"
