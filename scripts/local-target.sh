#!/usr/bin/env bash
# The local target's apply and destroy steps, run by Terraform's local-exec from the `local` stack.
# Everything lives under NODESCALE_DIR: Nginx with its own prefix, PM2 with its own PM2_HOME; nothing in /etc.
set -euo pipefail

action="${1:?usage: local-target.sh apply|destroy|preflight}"

say() { echo "nodescale local: $*"; }
fail() { echo "nodescale local: $*" >&2; exit 1; }
require_nginx() {
  command -v nginx >/dev/null 2>&1 || fail "nginx is not installed. Install it first: 'sudo apt-get update && sudo apt-get install -y nginx' (Debian/Ubuntu) or 'brew install nginx' (macOS)."
}
# npm run local checks this before it builds, so the message is not buried in cdktf's output.
if [ "${action}" = "preflight" ]; then require_nginx; exit 0; fi

dir="${NODESCALE_DIR:?NODESCALE_DIR is not set}"
root="${NODESCALE_ROOT:?NODESCALE_ROOT is not set}"
deploy_id="${NODESCALE_DEPLOY_ID:?NODESCALE_DEPLOY_ID is not set}"
pm2_bin="${root}/node_modules/.bin/pm2"
nginx_args=(-p "${dir}/nginx" -c "${dir}/nginx/nginx.conf" -e "${dir}/nginx/logs/error.log")
export PM2_HOME="${dir}/pm2"

nginx_pid() {
  local pid
  pid="$(cat "${dir}/nginx/nginx.pid" 2>/dev/null || true)"
  if [ -n "${pid}" ] && kill -0 "${pid}" 2>/dev/null; then echo "${pid}"; fi
}

port_busy() {
  node -e '
    const s = require("node:net").connect({ host: "127.0.0.1", port: Number(process.argv[1]) });
    s.on("connect", () => process.exit(0)); s.on("error", () => process.exit(1));
  ' "$1"
}

# Names of the PM2 apps currently running under this PM2_HOME.
running_apps() {
  "${pm2_bin}" jlist 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { for (const p of JSON.parse(s)) console.log(p.name); } catch {}
    });
  ' | sort -u
}

apply() {
  require_nginx
  [ -x "${pm2_bin}" ] || fail "PM2 is missing at ${pm2_bin}; run 'npm ci' in ${root}."
  [ -f "${root}/app/dist/main.js" ] || fail "the app is not built (${root}/app/dist/main.js is missing); run 'npm run build'."

  mkdir -p "${dir}/nginx/logs" "${dir}/nginx/tmp" "${dir}/logs" "${PM2_HOME}"
  chmod 0755 "${dir}" "${dir}/nginx" "${dir}/nginx/tmp"
  printf '%s' "${NGINX_CONF_B64:?}" | base64 -d > "${dir}/nginx/nginx.conf"
  printf '%s' "${NGINX_SITE_B64:?}" | base64 -d > "${dir}/nginx/site.conf"
  printf '%s' "${ECOSYSTEM_B64:?}" | base64 -d > "${dir}/ecosystem.config.js"
  printf '%s' "${RELOAD_B64:?}" | base64 -d > "${dir}/reload.sh"
  chmod 0755 "${dir}/reload.sh"

  if [ -z "$(nginx_pid)" ] && port_busy "${NODESCALE_PORT:?}"; then
    fail "127.0.0.1:${NODESCALE_PORT} is already in use by another program; stop it or set local.port in nodescale.config.json."
  fi
  nginx -t -q "${nginx_args[@]}" || fail "the rendered Nginx config failed 'nginx -t' (see above)."

  # Apps of an earlier plan that the new one does not have (a mode or worker-count change).
  local wanted stale
  wanted="$(tr ' ' '\n' <<<"${NODESCALE_APPS:?}" | sort -u)"
  stale="$(comm -23 <(running_apps) <(echo "${wanted}"))"
  if [ -n "${stale}" ] && [ -z "$(comm -12 <(running_apps) <(echo "${wanted}"))" ]; then
    # Nothing carries over (for example cluster -> fork on the same port): stop the old set first.
    say "replacing PM2 apps: ${stale//$'\n'/ }"
    for app in ${stale}; do "${pm2_bin}" delete "${app}" >/dev/null; done
    stale=""
  fi

  PM2_BIN="${pm2_bin}" NODE_BIN="$(command -v node)" "${dir}/reload.sh"
  for app in ${stale}; do "${pm2_bin}" delete "${app}" >/dev/null && say "removed PM2 app ${app}"; done

  if [ -n "$(nginx_pid)" ]; then
    nginx "${nginx_args[@]}" -s reload
    say "nginx reloaded"
  else
    nginx "${nginx_args[@]}"
    say "nginx started on 127.0.0.1:${NODESCALE_PORT}"
  fi
  echo "${deploy_id}" > "${dir}/deploy-id"
}

destroy() {
  if [ "$(cat "${dir}/deploy-id" 2>/dev/null || true)" != "${deploy_id}" ]; then
    say "deployment ${deploy_id:0:12} was superseded; nothing to stop"
    return 0
  fi
  local pid
  pid="$(nginx_pid)"
  if [ -n "${pid}" ]; then
    nginx "${nginx_args[@]}" -s quit
    for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -0 "${pid}" 2>/dev/null && kill -9 "${pid}"
    say "nginx stopped"
  fi
  if [ -x "${pm2_bin}" ] && [ -d "${PM2_HOME}" ]; then
    pid="$(cat "${PM2_HOME}/pm2.pid" 2>/dev/null || true)"
    "${pm2_bin}" kill >/dev/null 2>&1 || true
    # pm2 kill returns before its daemon has exited; wait so no process outlives the destroy.
    if [ -n "${pid}" ]; then
      for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
      kill -0 "${pid}" 2>/dev/null && kill -9 "${pid}"
    fi
    say "PM2 stopped"
  fi
  rm -rf "${dir}"
}

case "${action}" in
  apply) apply ;;
  destroy) destroy ;;
  *) fail "unknown action ${action}; use apply, destroy or preflight" ;;
esac
