#!/usr/bin/env bash
# npm run providers: builds the Terraform providers the stacks use from their Go modules (no Terraform registry is
# reachable here; the Go module proxy is), installs each under .nodescale/terraform/providers/, and prints, as its
# last line, the path of a Terraform CLI configuration that uses them:
#   TF_CLI_CONFIG_FILE="$(npm run --silent providers | tail -n 1)" cdktf deploy vm-pm2
# Idempotent: a provider whose stamp holds the same pin (module, version, checksum) is not rebuilt. The Go build and
# module caches (~/.cache/go-build, ~/go/pkg/mod) make a rebuild after a wipe of .nodescale/ take minutes, not an hour.
#
# The pins are NOT the releases our @cdktf/provider-* bindings were generated from (aws 6.25.0, kubernetes 2.38.0,
# helm 3.1.1, docker 3.6.2, digitalocean 2.71.0): the module proxy reachable here refuses those commits (403 "This
# module version is not available", for the tag's commit and for its pseudo-version alike) and serves one newer
# commit of each module. Those are pinned below, checksum-verified, and installed as `dev_overrides` (Terraform
# ignores the stacks' exact version pins for an overridden provider and says so in a warning). The digitalocean
# module is refused whole, so it is not built: see docs/terraform.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DIR="${NODESCALE_TERRAFORM_DIR:-${ROOT}/.nodescale/terraform}"
PROVIDERS="${DIR}/providers"
mkdir -p "${PROVIDERS}" "${DIR}/mirror"
t0=$(date +%s)
say() { echo "== providers ($(( $(date +%s) - t0 ))s): $*" >&2; }

# registry address | Go module | version (the proxy's pseudo-version) | module checksum (go.sum h1) | release it stands in for
PINS=(
  "hashicorp/aws|github.com/hashicorp/terraform-provider-aws|v1.60.1-0.20260602190131-5f2286d6d836|h1:haLmsj0WF7e6d2TGbk0fbz5qWdA9f8w9sNpMe6J6WqM=|6.25.0"
  "hashicorp/kubernetes|github.com/hashicorp/terraform-provider-kubernetes|v1.13.4-0.20260821094251-3a33fb6cc605|h1:Bb8CFKLw8r2CTu9NL5LUtj4kgOcE3q8D/lWUqtjSVWI=|2.38.0"
  "hashicorp/helm|github.com/hashicorp/terraform-provider-helm|v1.3.3-0.20260629194918-a4f1c1d8b008|h1:9ET6rZv2lPDwYWdgp5AeSZ7/ONcyZrkKwJGt1I3OZcg=|3.1.1"
  # kreuzwerker's fork still declares github.com/terraform-providers/terraform-provider-docker in its go.mod; built
  # inside its own module directory, the declared path does not matter.
  "kreuzwerker/docker|github.com/kreuzwerker/terraform-provider-docker|v0.0.0-20260916201441-96d331c98ff4|h1:T3HvvZCRd4h2qkMl+SXA2zza26Rdz8xqV81skikQWy4=|3.6.2"
)
ONLY="${NODESCALE_PROVIDERS:-}" # e.g. "hashicorp/kubernetes hashicorp/helm": build only these

overrides=""
for pin in "${PINS[@]}"; do
  IFS='|' read -r address module version sum release <<<"${pin}"
  type="${address#*/}"
  out="${PROVIDERS}/${type}"
  stamp="${module}@${version} ${sum}"
  built=false
  [ -x "${out}/terraform-provider-${type}" ] && [ "$(cat "${out}/stamp" 2>/dev/null)" = "${stamp}" ] && built=true
  if [ -n "${ONLY}" ] && [[ " ${ONLY} " != *" ${address} "* ]]; then
    # Not asked for this time: named in the configuration if it is built at this pin, else left out.
    if [ "${built}" = true ]; then overrides+="    \"${address}\" = \"${out}\"\n"; fi
    continue
  fi
  if [ "${built}" = true ]; then
    say "${address}: built already (${version})"
  else
    say "${address}: downloading ${module}@${version}"
    # go verifies the zip against the checksum database; the pinned h1 is compared as well, so a changed pin fails here.
    json="$(go mod download -json "${module}@${version}")"
    got="$(node -e 'const j=JSON.parse(process.argv[1]); if (j.Error) { console.error(j.Error); process.exit(1) } console.log(j.Sum + " " + j.Dir)' "${json}")"
    if [ "${got%% *}" != "${sum}" ]; then
      echo "providers: ${module}@${version} has checksum ${got%% *}, pinned ${sum}" >&2
      exit 1
    fi
    src="${got#* }"
    say "${address}: building (nice -n 10 go build -trimpath)"
    rm -rf "${out}"
    mkdir -p "${out}"
    b0=$(date +%s)
    (cd "${src}" && nice -n 10 go build -trimpath -ldflags='-s -w' -o "${out}/terraform-provider-${type}" .)
    echo "${stamp}" >"${out}/stamp"
    say "${address}: built in $(( $(date +%s) - b0 ))s, $(du -m "${out}/terraform-provider-${type}" | cut -f1) MiB (stands in for ${release})"
  fi
  overrides+="    \"${address}\" = \"${out}\"\n"
done

config="${DIR}/terraform.rc"
{
  echo "# Written by npm run providers. Providers built from their Go modules (dev_overrides: no registry is reachable);"
  echo "# anything else is looked up only in the (empty) filesystem mirror, never on the network."
  echo "provider_installation {"
  echo "  dev_overrides {"
  printf "%b" "${overrides}"
  echo "  }"
  echo "  filesystem_mirror {"
  echo "    path = \"${DIR}/mirror\""
  echo "  }"
  echo "}"
} >"${config}.tmp"
mv "${config}.tmp" "${config}"
say "done"
echo "${config}"
