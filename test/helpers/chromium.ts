import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Debian's chromium, headless, as root (no sandbox there), with no network: a screenshot of a local file. */
export function screenshot(htmlFile: string, dir: string, size = "1100,1500"): Buffer {
  const png = join(dir, "screenshot.png");
  const run = spawnSync(
    "chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--no-first-run",
      // Nothing may be fetched: the page must be self-contained.
      "--proxy-server=127.0.0.1:9",
      "--proxy-bypass-list=<-loopback>",
      `--user-data-dir=${join(dir, "profile")}`,
      `--window-size=${size}`,
      `--screenshot=${png}`,
      `file://${htmlFile}`,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (run.status !== 0) throw new Error(`chromium exited ${run.status}: ${run.stderr}`);
  return readFileSync(png);
}
