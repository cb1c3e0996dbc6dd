#!/usr/bin/env bash
# Installs what `npm run test:terraform` needs, each at a pinned release, under .nodescale/terraform/ (git-ignored):
#   terraform   1.11.4 when no terraform is on PATH: built from its Go module (bin/terraform)
#   providers   npm run providers (scripts/providers.sh): aws, kubernetes, helm, docker from their Go modules
#   moto        moto[server] from PyPI in its own virtualenv (moto/): the AWS stand-in the apply tests run against
#   checkov     from PyPI in its own virtualenv (checkov/): the Terraform security scanner
#   kube-score  from the Go module proxy (bin/kube-score): the Kubernetes objects' linter
# Idempotent: each is skipped when the pinned release is already there. Prints, as its last line, the folder to put
# first on PATH (bin/), which holds terraform when it was built here. NODESCALE_TOOLS=terraform: terraform only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DIR="${NODESCALE_TERRAFORM_DIR:-${ROOT}/.nodescale/terraform}"
BIN="${DIR}/bin"
mkdir -p "${BIN}"
t0=$(date +%s)
say() { echo "== terraform-tools ($(( $(date +%s) - t0 ))s): $*" >&2; }

TERRAFORM_VERSION="1.11.4"
MOTO_VERSION="5.2.6"
CHECKOV_VERSION="3.3.30"
KUBE_SCORE_VERSION="v1.20.0"

# Terraform: `go install github.com/hashicorp/terraform@v1.11.4` is refused (its go.mod has replace directives), and
# the module's zip lacks what those directives name (its nested remote-state backend modules: a zip leaves nested
# modules out). So it is built in a copy of the module's checksum-verified source whose go.mod requires each nested
# module at the release's own commit (the proxy serves them as v0.0.0-20250409131005-35645b8fca68: v1.11.4's commit
# time, 2025-04-09T13:10:05Z, and hash) instead of replacing it with a folder that is not there.
TERRAFORM_NESTED="v0.0.0-20250409131005-35645b8fca68"
if command -v terraform >/dev/null 2>&1 && [ "$(command -v terraform)" != "${BIN}/terraform" ]; then
  say "terraform: on PATH already ($(terraform version | head -n 1))"
elif [ -x "${BIN}/terraform" ] && "${BIN}/terraform" version | head -n 1 | grep -qx "Terraform v${TERRAFORM_VERSION}"; then
  say "terraform: ${TERRAFORM_VERSION} built already"
else
  say "terraform: building ${TERRAFORM_VERSION} from github.com/hashicorp/terraform@v${TERRAFORM_VERSION}"
  src="$(go mod download -json "github.com/hashicorp/terraform@v${TERRAFORM_VERSION}" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const j = JSON.parse(s); if (j.Error) { console.error(j.Error); process.exit(1) } console.log(j.Dir) })')"
  work="${DIR}/build/terraform-${TERRAFORM_VERSION}"
  rm -rf "${work}"
  mkdir -p "${DIR}/build"
  cp -r "${src}" "${work}"
  chmod -R u+w "${work}"
  (
    cd "${work}"
    sed -n 's#^replace \(github.com/hashicorp/terraform/[^ ]*\) => \./.*#\1#p' go.mod | while read -r nested; do
      go mod edit -dropreplace="${nested}" -require="${nested}@${TERRAFORM_NESTED}"
    done
    # Go 1.26 no longer knows the `godebug tlskyber=0` line (a Go 1.23 workaround): without it, go refuses the go.mod.
    go mod edit -dropgodebug=tlskyber
    # version.dev=no, as HashiCorp's release builds set it: else the binary calls itself "v1.11.4-dev".
    nice -n 10 go build -mod=mod -trimpath -ldflags="-s -w -X github.com/hashicorp/terraform/version.dev=no" -o "${BIN}/terraform" .
  )
  rm -rf "${work}"
fi

if [ "${NODESCALE_TOOLS:-all}" = "terraform" ]; then
  echo "${BIN}"
  exit 0
fi

say "providers"
bash scripts/providers.sh >/dev/null

venv() { # venv NAME PACKAGE VERSION: a virtualenv holding PACKAGE==VERSION
  local name="$1" package="$2" version="$3" dir="${DIR}/$1"
  if [ -x "${dir}/bin/python" ] && [ "$("${dir}/bin/python" -m pip show "${package%%[*}" 2>/dev/null | sed -n 's/^Version: //p')" = "${version}" ]; then
    say "${name}: ${version} installed already"
    return
  fi
  say "${name}: pip install ${package}==${version}"
  rm -rf "${dir}"
  python3 -m venv "${dir}"
  "${dir}/bin/python" -m pip install -q --disable-pip-version-check "${package}==${version}"
}
venv moto "moto[server]" "${MOTO_VERSION}"
venv checkov checkov "${CHECKOV_VERSION}"

if [ -x "${BIN}/kube-score" ] && [ "$(cat "${BIN}/kube-score.version" 2>/dev/null)" = "${KUBE_SCORE_VERSION}" ]; then
  say "kube-score: ${KUBE_SCORE_VERSION} installed already"
else
  say "kube-score: go install github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
  GOBIN="${BIN}" nice -n 10 go install -trimpath "github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
  echo "${KUBE_SCORE_VERSION}" >"${BIN}/kube-score.version"
fi
say "done"
echo "${BIN}"
