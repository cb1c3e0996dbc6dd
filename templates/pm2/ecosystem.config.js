// Rendered by NodeScale for service {{name}} ({{mode}} mode). Do not edit by hand: redeploy instead.
// kill_timeout ({{killTimeoutMs}} ms) outlasts the app's own shutdown grace, so PM2 only SIGKILLs a stuck process.
module.exports = {
  apps: {{appsJson}},
};
