// NodeScale preload (node --require, through PM2's node_args), loaded before the app in every process:
//  1. every HTTP answer names the process that gave it (X-NodeScale-Pid/-Host/-Release/-Machine), so the
//     post-deploy check can count processes and releases for any app, not only one that reports them itself;
//  2. with NODESCALE_HSTS_SECONDS, answers to requests that arrived over HTTPS (X-Forwarded-Proto) carry HSTS;
//  3. a shutdown never races the proxy on a keep-alive connection: after SIGINT/SIGTERM answers carry
//     "Connection: close", and idle connections are closed 1 s later instead of at once (Node's server.close()
//     closes them immediately, while Nginx may be sending on one). The app's own shutdown runs unchanged.
"use strict";
const diagnostics = require("node:diagnostics_channel");
const http = require("node:http");
const os = require("node:os");

const IDLE_DRAIN_MS = 1000;
let draining = false;

// Read at the first request, not at load: in PM2 cluster mode the environment is filled in after preloads ran.
let headers;
function nodescaleHeaders() {
  headers ??= [
    ["x-nodescale-pid", String(process.pid)],
    ["x-nodescale-host", os.hostname()],
    ["x-nodescale-release", process.env.NODESCALE_RELEASE || ""],
    ["x-nodescale-machine", process.env.NODESCALE_MACHINE || ""],
  ].filter(([, value]) => value !== "");
  return headers;
}

diagnostics.subscribe("http.server.request.start", ({ request, response }) => {
  for (const [name, value] of nodescaleHeaders()) {
    if (!response.hasHeader(name)) response.setHeader(name, value);
  }
  // Behind a proxy that ends TLS and sends no HSTS itself (Traefik without its CRDs): HSTS on what came over HTTPS.
  const hsts = process.env.NODESCALE_HSTS_SECONDS;
  if (hsts && request.headers["x-forwarded-proto"] === "https" && !response.hasHeader("strict-transport-security")) {
    response.setHeader("strict-transport-security", "max-age=" + hsts);
  }
  if (draining) response.setHeader("connection", "close");
});

const closeIdleConnections = http.Server.prototype.closeIdleConnections;
if (typeof closeIdleConnections === "function") {
  http.Server.prototype.closeIdleConnections = function closeIdleLater() {
    if (!draining) return closeIdleConnections.call(this);
    setTimeout(() => closeIdleConnections.call(this), IDLE_DRAIN_MS).unref();
  };
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  const onSignal = () => {
    draining = true;
    // Only this listener: the app does not handle the signal, so it gets Node's default (exit) as without us.
    if (process.listenerCount(signal) === 1) {
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.prependListener(signal, onSignal);
}
