#!/usr/bin/env bash
# Rendered by NodeScale: provisions {{name}} on an Ubuntu LTS machine (Nginx in front of PM2, both under
# systemd), then hands over to the NodeScale machine agent, which gates the release and converges the
# processes exactly as on the local stack. Safe to run again: a release rollout is a re-run (SSM).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

readonly NODE_VERSION="{{nodeVersion}}"
readonly NODE_SHA256="{{nodeSha256}}"
# Where Node.js is downloaded from (vm.nodeMirror): the same file layout as https://nodejs.org/dist.
readonly NODE_MIRROR="{{nodeMirror}}"
readonly PM2_VERSION="{{pm2Version}}"
readonly APP_USER="nodescale"
readonly BASE="/opt/nodescale"

log() { echo "nodescale-provision: $*"; }
# Endpoints a machine may override (a VPC endpoint, a test's stand-ins), in the AWS tools' own variable names:
# AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_ENDPOINT_URL_S3.
# shellcheck source=/dev/null
if [ -f /etc/nodescale/provision.env ]; then . /etc/nodescale/provision.env; fi

# cloud-init, a redeploy (SSM, SSH) and the boot re-run may all run this script: one at a time, and a run that
# waited 15 minutes (NODESCALE_PROVISION_LOCK_SECONDS) for another gives up, saying so, instead of hanging the deploy.
install -d -m 0755 "${BASE}" "${BASE}/bin" "${BASE}/bundles" /etc/nodescale
lock_seconds="${NODESCALE_PROVISION_LOCK_SECONDS:-900}"
exec 9>/var/lock/nodescale-provision.lock
if ! flock -w "${lock_seconds}" 9; then
  log "another provisioning run has held the lock for ${lock_seconds} s; giving up (the next run retries)"
  exit 75
fi
# Keep a copy, so a redeploy can run the same steps again.
if [ "$(readlink -f "$0")" != "${BASE}/bin/provision.sh" ]; then
  install -m 0700 "$0" "${BASE}/bin/provision.sh.tmp"
  mv -f "${BASE}/bin/provision.sh.tmp" "${BASE}/bin/provision.sh"
fi
# A first run cut short (a reboot, a lost instance) is run again at the next boot, until one completes.
if [ ! -f /etc/systemd/system/nodescale-provision.service ]; then
  cat > /etc/systemd/system/nodescale-provision.service.tmp <<'NODESCALE_UNIT'
{{provisionUnit}}
NODESCALE_UNIT
  mv -f /etc/systemd/system/nodescale-provision.service.tmp /etc/systemd/system/nodescale-provision.service
  systemctl daemon-reload
  systemctl enable nodescale-provision.service
fi

# apt may be busy (unattended-upgrades at first boot): wait for its lock (bounded), and retry a failed run.
apt_install() {
  local attempt
  for attempt in 1 2 3; do
    if apt-get -o DPkg::Lock::Timeout=300 update -q && apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@"; then return 0; fi
    log "apt failed (attempt ${attempt} of 3); retrying in 15 s"
    sleep 15
  done
  return 1
}

# Where the app bundle comes from; defines BUNDLE_SHA256 and fetch_bundle DEST.
{{bundleSource}}

log "packages"
if ! command -v nginx >/dev/null 2>&1 || ! command -v xz >/dev/null 2>&1 || ! command -v logrotate >/dev/null 2>&1; then
  apt_install nginx curl ca-certificates xz-utils logrotate
fi

log "SSH: keys only"
# A Droplet created without SSH keys gets a root password by e-mail; nothing here may log in with a password.
# "10-": sshd keeps the first value it reads, so this wins over cloud-init's 50-cloud-init.conf.
if [ -d /etc/ssh/sshd_config.d ]; then
  printf '%s\n' "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" \
    > /etc/ssh/sshd_config.d/10-nodescale.conf.tmp
  if ! cmp -s /etc/ssh/sshd_config.d/10-nodescale.conf.tmp /etc/ssh/sshd_config.d/10-nodescale.conf; then
    mv -f /etc/ssh/sshd_config.d/10-nodescale.conf.tmp /etc/ssh/sshd_config.d/10-nodescale.conf
    # sshd -t first: a file sshd rejects must not lock everyone out at the next restart.
    if sshd -t; then
      systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true
    else
      rm -f /etc/ssh/sshd_config.d/10-nodescale.conf
    fi
  else
    rm -f /etc/ssh/sshd_config.d/10-nodescale.conf.tmp
  fi
fi

log "Node.js v${NODE_VERSION}"
# Unpacked beside the others and switched by one rename of a link: a cut-off download or unpack never leaves a
# half-written node in place.
node_dir="${BASE}/node/v${NODE_VERSION}"
if [ "$(/usr/local/bin/node --version 2>/dev/null || true)" != "v${NODE_VERSION}" ] || [ ! -x "${node_dir}/bin/node" ]; then
  if [ ! -x "${node_dir}/bin/node" ]; then
    tmp="$(mktemp -d)"
    curl -fsSL --retry 5 "${NODE_MIRROR}/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz" -o "${tmp}/node.tar.xz"
    echo "${NODE_SHA256}  ${tmp}/node.tar.xz" | sha256sum --check --strict -
    rm -rf "${node_dir}.partial"
    install -d -m 0755 "${node_dir}.partial"
    tar -xJf "${tmp}/node.tar.xz" -C "${node_dir}.partial" --strip-components=1 --no-same-owner
    rm -rf "${tmp}" "${node_dir}"
    mv "${node_dir}.partial" "${node_dir}"
  fi
  ln -sfn "v${NODE_VERSION}" "${BASE}/node/current.tmp"
  mv -Tf "${BASE}/node/current.tmp" "${BASE}/node/current"
  for tool in node npm npx pm2; do ln -sfn "${BASE}/node/current/bin/${tool}" "/usr/local/bin/${tool}"; done
fi

log "PM2 ${PM2_VERSION}"
# Read from its package.json: `pm2 --version` starts a PM2 daemon (as root, under /root/.pm2) that would idle on the
# machine for good.
pm2_package="${BASE}/node/current/lib/node_modules/pm2/package.json"
if [ "$(/usr/local/bin/node -p 'require(process.argv[1]).version' "${pm2_package}" 2>/dev/null || true)" != "${PM2_VERSION}" ]; then
  /usr/local/bin/npm install --global --no-fund --no-audit "pm2@${PM2_VERSION}"
fi

log "user and folders"
id -u "${APP_USER}" >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/nodescale --shell /usr/sbin/nologin "${APP_USER}"
install -d -o root -g root -m 0755 "${BASE}/releases" /etc/nginx/nodescale
install -d -o "${APP_USER}" -g "${APP_USER}" -m 0750 /var/log/nodescale /var/lib/nodescale/.pm2

{{channelSetup}}
{{tlsSetup}}log "agent and plan"
{{agentInstall}}
cat > "${BASE}/plan.json.tmp" <<'NODESCALE_PLAN'
{{plan}}
NODESCALE_PLAN
mv -f "${BASE}/plan.json.tmp" "${BASE}/plan.json"

log "systemd units: PM2 and Nginx restart when killed"
cat > /etc/systemd/system/nodescale-pm2.service.tmp <<'NODESCALE_UNIT'
{{pm2Unit}}
NODESCALE_UNIT
mv -f /etc/systemd/system/nodescale-pm2.service.tmp /etc/systemd/system/nodescale-pm2.service
# A metadata endpoint named by AWS_EC2_METADATA_SERVICE_ENDPOINT (an address literal) is closed to the app as well;
# the loopback address the app itself answers on never is.
imds_deny="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-}"
imds_deny="${imds_deny#*://}"
imds_deny="${imds_deny%%/*}"
if [[ "${imds_deny}" =~ ^\[([0-9A-Fa-f:.]+)\](:[0-9]+)?$ ]]; then imds_deny="${BASH_REMATCH[1]}"; else imds_deny="${imds_deny%%:*}"; fi
install -d -m 0755 /etc/systemd/system/nodescale-pm2.service.d
if [[ "${imds_deny}" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$|:  ]] && [ "${imds_deny}" != "127.0.0.1" ] && [ "${imds_deny}" != "::1" ]; then
  printf '[Service]\nIPAddressDeny=%s\n' "${imds_deny}" > /etc/systemd/system/nodescale-pm2.service.d/metadata.conf
else
  rm -f /etc/systemd/system/nodescale-pm2.service.d/metadata.conf
fi
install -d -m 0755 /etc/systemd/system/nginx.service.d
cat > /etc/systemd/system/nginx.service.d/nodescale-restart.conf.tmp <<'NODESCALE_DROPIN'
{{nginxDropIn}}
NODESCALE_DROPIN
mv -f /etc/systemd/system/nginx.service.d/nodescale-restart.conf.tmp /etc/systemd/system/nginx.service.d/nodescale-restart.conf
systemctl daemon-reload
systemctl enable nginx.service nodescale-pm2.service

log "Nginx site"
ln -sfn /etc/nginx/sites-available/{{name}}.conf /etc/nginx/sites-enabled/{{name}}.conf
rm -f /etc/nginx/sites-enabled/default
log "logs: bounded rotation, hourly"
cat > /etc/logrotate.d/nodescale.tmp <<'NODESCALE_LOGROTATE'
{{logrotateApp}}
NODESCALE_LOGROTATE
mv -f /etc/logrotate.d/nodescale.tmp /etc/logrotate.d/nodescale
cat > /etc/logrotate.d/nginx.tmp <<'NODESCALE_LOGROTATE'
{{logrotateNginx}}
NODESCALE_LOGROTATE
mv -f /etc/logrotate.d/nginx.tmp /etc/logrotate.d/nginx
install -d -m 0755 /etc/systemd/system/logrotate.timer.d
cat > /etc/systemd/system/logrotate.timer.d/nodescale.conf.tmp <<'NODESCALE_DROPIN'
{{logrotateTimer}}
NODESCALE_DROPIN
mv -f /etc/systemd/system/logrotate.timer.d/nodescale.conf.tmp /etc/systemd/system/logrotate.timer.d/nodescale.conf
systemctl daemon-reload
systemctl restart logrotate.timer 2>/dev/null || true

touch "${BASE}/provisioned"
if [ -z "${BUNDLE_SHA256}" ]; then
  touch "${BASE}/provision-complete"
  log "provisioned; no release yet: the first one arrives over SSH"
  exit 0
fi

log "app bundle ${BUNDLE_SHA256}"
bundle="${BASE}/bundles/${BUNDLE_SHA256}.tar.gz"
if [ ! -d "${BASE}/releases/${BUNDLE_SHA256}" ] && [ ! -f "${bundle}" ]; then
  fetch_bundle "${bundle}.partial"
  mv -f "${bundle}.partial" "${bundle}"
fi

{{secretsSetup}}log "deploy: canary, switch, converge, verify"
systemctl start nodescale-pm2.service
/usr/local/bin/node "${BASE}/bin/machine-agent.js" deploy "${BASE}/plan.json" --bundle "${bundle}" --sha256 "${BUNDLE_SHA256}"
find "${BASE}/bundles" -name '*.tar.gz' ! -name "${BUNDLE_SHA256}.tar.gz" -delete
{{tlsFirstTry}}touch "${BASE}/provision-complete"
log "done"
