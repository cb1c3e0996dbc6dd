#!/usr/bin/env bash
# npm run local:reload: a rolling restart of every process on every local machine (each drained from the
# local load balancer first when there are several), through the same agent a VM redeploy runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec node "${root}/dist/constructs/vm/local-runner.js" reload "${root}/.nodescale/${NODESCALE_LOCAL_INSTANCE:-local}"
