import pino from "pino";

const LEVELS = Object.keys(pino.levels.values);

function levelFromEnv(): string {
  const raw = process.env.LOG_LEVEL;
  if (raw === undefined || raw === "") return "info";
  if (LEVELS.includes(raw) || raw === "silent") return raw;
  process.stderr.write(`nodescale-app: LOG_LEVEL=${JSON.stringify(raw)} is not allowed (allowed: ${[...LEVELS, "silent"].join(", ")})\n`);
  process.exit(2);
}

/**
 * The app's one logger: JSON lines on stdout (PM2 and Kubernetes collect stdout), written synchronously so the
 * last lines before an exit are never lost. LOG_LEVEL sets the threshold (default "info"; probes log at "debug").
 */
export const logger = pino({
  level: levelFromEnv(),
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
});
