#!/usr/bin/env bash
# Rendered by NodeScale: rolling reload of {{name}} ({{mode}} mode) with zero downtime behind Nginx.
# cluster: PM2 starts a new worker, waits for its "ready", then stops an old one, one at a time.
# fork: PM2 restarts a fork-mode app all at once, so we go port by port and Nginx fails over meanwhile.
set -euo pipefail

mode="{{mode}}"
ports=({{ports}})
ecosystem="{{ecosystemFile}}"
pm2_bin="${PM2_BIN:-pm2}"
node_bin="${NODE_BIN:-node}"

wait_ready() {
  local port="$1"
  # shellcheck disable=SC2016 # the single-quoted text is JavaScript, with its own ${...}
  "$node_bin" -e '
    const [port, path, seconds] = process.argv.slice(1);
    const deadline = Date.now() + Number(seconds) * 1000;
    const attempt = () => fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })
      .then((r) => { if (r.status !== 200) throw new Error(`status ${r.status}`); })
      .catch((err) => {
        if (Date.now() > deadline) { console.error(`nodescale-reload: port ${port} not ready after ${seconds}s: ${err.message}`); process.exit(1); }
        return new Promise((res) => setTimeout(res, 250)).then(attempt);
      });
    attempt();
  ' "$port" "{{readyPath}}" "{{readyTimeoutSeconds}}"
}

if [ "${mode}" = "cluster" ]; then
  "$pm2_bin" startOrReload "$ecosystem" --update-env
else
  for port in "${ports[@]}"; do
    "$pm2_bin" startOrReload "$ecosystem" --only "{{name}}-${port}" --update-env
    wait_ready "$port"
  done
fi
"$pm2_bin" save --force >/dev/null
echo "nodescale-reload: {{name}} reloaded (${mode} mode)"
