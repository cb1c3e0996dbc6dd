#!/usr/bin/env bash
# npm run local:down: destroy the `local` stack; leaves no Nginx, no PM2 and no listening port behind, also
# after a crash (orphaned Nginx workers and app processes are found and stopped).
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
npm run --silent build
npx cdktf destroy local --auto-approve
# Whatever the state file did not know about (a deploy that failed half-way): the same stop, by folder.
dir=".nodescale/${NODESCALE_LOCAL_INSTANCE:-local}"
if [ -d "${dir}" ]; then node dist/constructs/vm/local-runner.js down "$(pwd)/${dir}"; fi
