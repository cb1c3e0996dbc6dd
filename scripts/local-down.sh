#!/usr/bin/env bash
# npm run local:down: destroy the `local` stack; leaves no Nginx, no PM2 and no listening port behind.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
npm run --silent build
npx cdktf destroy local --auto-approve
