#!/usr/bin/env bash
# npm run local: build, deploy the `local` stack (Nginx + PM2 on 127.0.0.1) and end with its health check.
# Every run converges the machines (repairing dead processes, a dead Nginx or PM2) and health-checks them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
# Before the build, so the message is not buried in cdktf's output.
command -v nginx >/dev/null 2>&1 || {
  echo "nodescale local: nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS)." >&2
  exit 1
}
npm run --silent build
mkdir -p .nodescale
# One outputs file per instance (NODESCALE_LOCAL_INSTANCE), beside its state: two instances never overwrite each other's.
npx cdktf deploy local --auto-approve --outputs-file ".nodescale/${NODESCALE_LOCAL_INSTANCE:-local}-outputs.json"
