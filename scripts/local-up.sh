#!/usr/bin/env bash
# npm run local: build, deploy the `local` stack (Nginx + PM2 on 127.0.0.1) and end with its health check.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
bash scripts/local-target.sh preflight
npm run --silent build
npx cdktf deploy local --auto-approve --outputs-file .nodescale/local-outputs.json
