#!/usr/bin/env bash
# npm run local:reload: the rolling reload of the running local deployment, the same script a VM redeploy runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${root}/.nodescale/${NODESCALE_LOCAL_INSTANCE:-local}"
[ -x "${dir}/reload.sh" ] || { echo "nodescale local: nothing is deployed here; run 'npm run local' first." >&2; exit 1; }
export PM2_HOME="${dir}/pm2" PM2_BIN="${root}/node_modules/.bin/pm2"
exec "${dir}/reload.sh"
