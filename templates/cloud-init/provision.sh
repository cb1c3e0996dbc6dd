#!/usr/bin/env bash
# Rendered by NodeScale: provisions {{name}} on an Ubuntu LTS machine (Nginx in front of PM2).
# Safe to run twice: every step checks before it changes anything.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

readonly NODE_VERSION="{{nodeVersion}}"
readonly NODE_SHA256="{{nodeSha256}}"
readonly PM2_VERSION="{{pm2Version}}"
readonly APP_USER="nodescale"
readonly BASE="/opt/nodescale"
readonly PM2_HOME_DIR="/var/lib/nodescale/.pm2"
readonly LOG_DIR="/var/log/nodescale"

log() { echo "nodescale-provision: $*"; }

# cloud-init and a redeploy (SSM) may both run this script: one at a time.
install -d -m 0755 "${BASE}" "${BASE}/bin"
exec 9>/var/lock/nodescale-provision.lock
flock 9
# Keep a copy, so a redeploy can run the same steps again.
if [ "$(readlink -f "$0")" != "${BASE}/bin/provision.sh" ]; then install -m 0700 "$0" "${BASE}/bin/provision.sh"; fi

# Where the app bundle comes from; defines BUNDLE_SHA256 and fetch_bundle DEST.
{{bundleSource}}

log "packages"
if ! command -v nginx >/dev/null 2>&1 || ! command -v xz >/dev/null 2>&1 || ! command -v logrotate >/dev/null 2>&1; then
  apt-get update -q
  apt-get install -y -q nginx curl ca-certificates xz-utils logrotate
fi

log "Node.js v${NODE_VERSION}"
if [ "$(/usr/local/bin/node --version 2>/dev/null || true)" != "v${NODE_VERSION}" ]; then
  tmp="$(mktemp -d)"
  curl -fsSL --retry 5 "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz" -o "${tmp}/node.tar.xz"
  echo "${NODE_SHA256}  ${tmp}/node.tar.xz" | sha256sum --check --strict -
  tar -xJf "${tmp}/node.tar.xz" -C /usr/local --strip-components=1 --no-same-owner
  rm -rf "${tmp}"
fi

log "PM2 ${PM2_VERSION}"
if [ "$(/usr/local/bin/pm2 --version 2>/dev/null | tail -n 1 || true)" != "${PM2_VERSION}" ]; then
  /usr/local/bin/npm install --global --no-fund --no-audit "pm2@${PM2_VERSION}"
fi

log "user and folders"
id -u "${APP_USER}" >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/nodescale --shell /usr/sbin/nologin "${APP_USER}"
install -d -o root -g root -m 0755 "${BASE}/releases"
install -d -o "${APP_USER}" -g "${APP_USER}" -m 0750 "${LOG_DIR}" "${PM2_HOME_DIR}"

log "app bundle ${BUNDLE_SHA256}"
bundle="${BASE}/releases/${BUNDLE_SHA256}.tar.gz"
if [ ! -f "${bundle}" ]; then
  fetch_bundle "${bundle}.partial"
  echo "${BUNDLE_SHA256}  ${bundle}.partial" | sha256sum --check --strict -
  mv "${bundle}.partial" "${bundle}"
fi
release="${BASE}/releases/${BUNDLE_SHA256}"
if [ ! -d "${release}" ]; then
  install -d -o root -g root -m 0755 "${release}.partial"
  tar -xzf "${bundle}" -C "${release}.partial" --no-same-owner
  echo "${BUNDLE_SHA256}" > "${release}.partial/RELEASE"
  mv "${release}.partial" "${release}"
fi
ln -sfn "${release}" "${BASE}/current"

log "config files"
cat > "${BASE}/ecosystem.config.js" <<'NODESCALE_ECOSYSTEM'
{{ecosystem}}
NODESCALE_ECOSYSTEM
cat > "${BASE}/bin/reload.sh" <<'NODESCALE_RELOAD'
{{reloadScript}}
NODESCALE_RELOAD
chmod 0755 "${BASE}/bin/reload.sh"
cat > /etc/nginx/sites-available/{{name}}.conf <<'NODESCALE_NGINX'
{{nginxSite}}
NODESCALE_NGINX
ln -sfn /etc/nginx/sites-available/{{name}}.conf /etc/nginx/sites-enabled/{{name}}.conf
rm -f /etc/nginx/sites-enabled/default
cat > /etc/logrotate.d/nodescale <<'NODESCALE_LOGROTATE'
/var/log/nodescale/*.log {
    daily
    rotate 14
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
NODESCALE_LOGROTATE

log "PM2 under systemd as ${APP_USER}"
cat > /etc/systemd/system/nodescale-pm2.service <<NODESCALE_UNIT
[Unit]
Description=PM2 for NodeScale service {{name}}
After=network-online.target
Wants=network-online.target

[Service]
Type=forking
User=${APP_USER}
Environment=PM2_HOME=${PM2_HOME_DIR}
Environment=PATH=/usr/local/bin:/usr/bin:/bin
PIDFile=${PM2_HOME_DIR}/pm2.pid
ExecStart=/usr/local/bin/pm2 resurrect
ExecReload=/usr/local/bin/pm2 reload all
ExecStop=/usr/local/bin/pm2 kill
Restart=on-failure
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true

[Install]
WantedBy=multi-user.target
NODESCALE_UNIT
systemctl daemon-reload
systemctl enable nodescale-pm2.service

log "start or reload"
run_pm2() { runuser -u "${APP_USER}" -- env PM2_HOME="${PM2_HOME_DIR}" PATH=/usr/local/bin:/usr/bin:/bin "$@"; }
systemctl start nodescale-pm2.service
run_pm2 env PM2_BIN=/usr/local/bin/pm2 NODE_BIN=/usr/local/bin/node "${BASE}/bin/reload.sh"


nginx -t
systemctl enable nginx
systemctl reload nginx || systemctl restart nginx
log "done"
