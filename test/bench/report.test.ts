import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { barChart, renderBenchReport, SERIES_COLOURS } from "../../bench/report";
import { screenshot } from "../helpers/chromium";
import { tempDir } from "../helpers/fixtures";
import { countColour, decodePng } from "../helpers/png";

const m = (rps: number, p50: number) => ({ requestsPerSecond: rps, p50Ms: p50, p90Ms: p50 * 2, p99Ms: p50 * 4 });
const results = {
  scaling: { cores: 2, single: m(180, 80), cluster: m(340, 45) },
  proxy: { direct: m(8500, 1.5), proxied: m(6600, 2), nginxWorkers: 1 },
  metrics: { without: m(8400, 1.6), with: m(7800, 1.7) },
  seconds: 8,
  when: "2026-11-23T12:00:00.000Z",
  machine: "2 cores, test CPU, Node v20",
};

describe("the bench report", () => {
  const html = renderBenchReport(results);

  it("states each ratio measured side by side, and fetches nothing", () => {
    expect(html).toContain("cluster / 1 process: 1.89x requests/s (aim: &gt;= 0.90 x cores)");
    expect(html).toContain("through Nginx / direct: 0.78x requests/s (aim: &gt;= 0.75x)");
    expect(html).toContain("with / without metrics: 0.93x requests/s");
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/);
  });

  it("draws bars in proportion: the larger value spans the plot, the smaller its share", () => {
    const svg = barChart("t", "requests/s", ["a", "b"], [{ label: "x", values: [100, 50] }]);
    const heights = [...svg.matchAll(/class="bar" [^>]*height="([\d.]+)"/g)].map((h) => Number(h[1]));
    expect(heights).toEqual([164, 82]);
  });

  it("renders its charts in headless Chromium with no network", () => {
    const dir = tempDir("nodescale-report-");
    const file = join(dir, "index.html");
    writeFileSync(file, html);
    const image = decodePng(screenshot(file, dir));
    expect(image.width).toBe(1100);
    // Three comparisons, two charts each, two series in every chart: both colours fill real bar areas.
    for (const colour of SERIES_COLOURS) expect([colour, countColour(image, colour) > 20_000]).toEqual([colour, true]);
  }, 90_000);
});
