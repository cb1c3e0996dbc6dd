#!/usr/bin/env bash
# Rendered by NodeScale: HTTPS on this machine for {{domain}}, with a certificate from an ACME CA ({{acmeServer}})
# through HTTP-01 challenges that Nginx answers from {{webroot}}. nodescale-certificate.timer runs this every minute
# until the certificate is here; certbot.timer renews it and runs "certificate.sh deployed" after each issuance and
# renewal, which points Nginx at it and reloads Nginx gracefully (open connections finish on the old workers).
set -euo pipefail

readonly DOMAIN="{{domain}}"
readonly WEBROOT="{{webroot}}"
readonly LE_DIR="{{letsencryptDir}}"
readonly LINK="{{tlsLink}}"
readonly LIVE="${LE_DIR}/live/${DOMAIN}"
# A certificate taken over from the machine this one replaced (over the SSH release channel), served until this
# machine has its own: it asks the CA only once that one has less than TAKEOVER_MIN_SECONDS left.
readonly IMPORTED="{{imported}}"
readonly TAKEOVER_MIN_SECONDS={{takeoverMinSeconds}}

log() { echo "nodescale-certificate: $*"; }

# Nginx reads the certificate through LINK: a placeholder until a real certificate is here, then certbot's live folder
# (whose files certbot swaps at each renewal) or one taken over. The link is replaced in one rename, never missing.
link_to() {
  ln -sfn "$1" "${LINK}.new"
  mv -Tf "${LINK}.new" "${LINK}"
}

# Points Nginx at a certificate; a config Nginx would reject is never reloaded.
serve() {
  link_to "$1"
  {{reloadNginx}}
  log "serving the certificate for ${DOMAIN}, valid until $(openssl x509 -enddate -noout -in "${LINK}/fullchain.pem" | cut -d= -f2)"
}

deployed() {
  serve "${LIVE}"
{{saveState}}}

# Before the first certificate: a self-signed pair for the domain (7 days, re-made when stale), so Nginx starts and
# serves everything that is not HTTPS (challenges, redirects, the checks by address) right away.
placeholder() {
  if [ -e "${LINK}" ] && [ "$(readlink "${LINK}")" != "{{placeholder}}" ]; then return 0; fi
  if [ -f "{{placeholder}}/fullchain.pem" ] && openssl x509 -checkend 86400 -noout -in "{{placeholder}}/fullchain.pem" >/dev/null; then
    link_to "{{placeholder}}"
    return 0
  fi
  install -d -m 0755 "$(dirname "${LINK}")"
  install -d -m 0700 "{{placeholder}}.new"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj "/CN=${DOMAIN}" \
    -addext "subjectAltName=DNS:${DOMAIN}" -keyout "{{placeholder}}.new/privkey.pem" -out "{{placeholder}}.new/fullchain.pem" 2>/dev/null
  rm -rf "{{placeholder}}"
  mv -T "{{placeholder}}.new" "{{placeholder}}"
  link_to "{{placeholder}}"
  log "placeholder certificate for ${DOMAIN} until the CA's is here"
}

case "${1:-}" in
  deployed) deployed; exit 0 ;;
  placeholder) placeholder; exit 0 ;;
  # A certificate was just taken over: serve it, unless this machine has its own.
  imported) if [ ! -f "${LIVE}/fullchain.pem" ]; then serve "${IMPORTED}"; fi; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [deployed|placeholder|imported]" >&2; exit 2 ;;
esac

if [ -f "${LIVE}/fullchain.pem" ]; then
  # Issued before, or carried over from the machine this one replaced: serve it; certbot.timer renews it.
  if [ "$(readlink "${LINK}" || true)" != "${LIVE}" ]; then deployed; fi
  exit 0
fi
if [ -f "${IMPORTED}/fullchain.pem" ] && openssl x509 -checkend "${TAKEOVER_MIN_SECONDS}" -noout -in "${IMPORTED}/fullchain.pem" >/dev/null; then
  if [ "$(readlink "${LINK}" || true)" != "${IMPORTED}" ]; then serve "${IMPORTED}"; fi
  exit 0
fi

# Ask the CA only once the domain reaches this machine: a CA limits failed validations (Let's Encrypt: 5 an hour per
# name), this probe with a token only this machine has costs nothing.
token="$(openssl rand -hex 16)"
install -d -m 0755 "${WEBROOT}/.well-known/acme-challenge"
probe="${WEBROOT}/.well-known/acme-challenge/nodescale-probe-${token}"
printf '%s' "${token}" > "${probe}"
answer="$(curl -fsS --max-time 5 "{{probeBase}}/.well-known/acme-challenge/nodescale-probe-${token}" 2>/dev/null || true)"
rm -f "${probe}"
if [ "${answer}" != "${token}" ]; then
  log "waiting: http://${DOMAIN} does not reach this machine yet (its DNS record); trying again in a minute"
  exit 0
fi

log "requesting a certificate for ${DOMAIN}"
certbot certonly --non-interactive --agree-tos {{account}} --server "{{acmeServer}}" \
  --webroot --webroot-path "${WEBROOT}" --domain "${DOMAIN}" --key-type ecdsa --cert-name "${DOMAIN}" \
  --config-dir "${LE_DIR}" --work-dir "{{workDir}}" --logs-dir "{{logsDir}}" \
  --deploy-hook "{{self}} deployed"
