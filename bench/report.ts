import type { MetricsCostResults, ScalingResults } from "./app-scaling";
import type { Measured } from "./load";
import type { ProxyResults } from "./proxy";

export interface BenchResults {
  readonly scaling: ScalingResults;
  readonly proxy: ProxyResults;
  readonly metrics: MetricsCostResults;
  readonly seconds: number;
  /** When it ran, and on what (shown as given). */
  readonly when: string;
  readonly machine: string;
}

/** The two series' colours: the baseline and what is compared with it (tests look for these pixels). */
export const SERIES_COLOURS = ["#2563eb", "#f97316"] as const;

const html = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
/** "a / b" as the bench prints it everywhere: "0.78x". */
export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

interface Group {
  readonly label: string;
  readonly values: readonly [number, number];
}

/** A grouped bar chart as inline SVG (no script, no network): one group per label, two bars each. Pure. */
export function barChart(title: string, unit: string, series: readonly [string, string], groups: readonly Group[]): string {
  const width = 460;
  const height = 240;
  const top = 36;
  const bottom = 40;
  const left = 56;
  const plot = height - top - bottom;
  const max = Math.max(...groups.flatMap((g) => g.values), 1e-9);
  const slot = (width - left - 10) / groups.length;
  const bar = Math.min(48, slot / 3);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${html(title)}">`,
    `<text x="${left}" y="18" font-size="14" font-weight="600">${html(title)}</text>`,
    `<line x1="${left}" y1="${top + plot}" x2="${width - 10}" y2="${top + plot}" stroke="#888"/>`,
    `<text x="${left - 6}" y="${top + 4}" font-size="10" text-anchor="end">${fmt(max)}</text>`,
    `<text x="${left - 6}" y="${top + plot}" font-size="10" text-anchor="end">0</text>`,
    `<text x="10" y="${top + plot / 2}" font-size="10" transform="rotate(-90 10 ${top + plot / 2})" text-anchor="middle">${html(unit)}</text>`,
  ];
  groups.forEach((g, i) => {
    const x0 = left + i * slot + (slot - 2 * bar - 4) / 2;
    g.values.forEach((v, k) => {
      const h = Math.max(1, (v / max) * plot);
      const x = x0 + k * (bar + 4);
      parts.push(
        `<rect class="bar" x="${x.toFixed(1)}" y="${(top + plot - h).toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" fill="${SERIES_COLOURS[k]}"><title>${html(series[k])}: ${fmt(v)} ${html(unit)}</title></rect>`,
        `<text x="${(x + bar / 2).toFixed(1)}" y="${(top + plot - h - 3).toFixed(1)}" font-size="10" text-anchor="middle">${fmt(v)}</text>`,
      );
    });
    parts.push(
      `<text x="${(left + i * slot + slot / 2).toFixed(1)}" y="${top + plot + 16}" font-size="11" text-anchor="middle">${html(g.label)}</text>`,
    );
  });
  series.forEach((s, k) => {
    const x = left + k * 180;
    parts.push(
      `<rect x="${x}" y="${height - 14}" width="10" height="10" fill="${SERIES_COLOURS[k]}"/>`,
      `<text x="${x + 14}" y="${height - 5}" font-size="11">${html(s)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function comparison(
  heading: string,
  request: string,
  series: readonly [string, string],
  a: Measured,
  b: Measured,
  verdict: string,
): string {
  const throughput = barChart(`Throughput, ${request}`, "requests/s", series, [
    { label: "requests/s", values: [a.requestsPerSecond, b.requestsPerSecond] },
  ]);
  const latency = barChart(`Latency, ${request}`, "ms", series, [
    { label: "p50", values: [a.p50Ms, b.p50Ms] },
    { label: "p90", values: [a.p90Ms, b.p90Ms] },
    { label: "p99", values: [a.p99Ms, b.p99Ms] },
  ]);
  return `<section><h2>${html(heading)}</h2><p class="ratio">${html(verdict)}</p><div class="charts">${throughput}${latency}</div></section>`;
}

/** The benchmark report: one self-contained HTML page (inline SVG and CSS, nothing fetched). Pure. */
export function renderBenchReport(r: BenchResults): string {
  const { scaling, proxy, metrics } = r;
  const sections = [
    comparison(
      `${scaling.cores} workers vs 1 process`,
      "GET /cpu?ms=5",
      ["1 process", `cluster of ${scaling.cores}`],
      scaling.single,
      scaling.cluster,
      `cluster / 1 process: ${ratio(scaling.cluster.requestsPerSecond, scaling.single.requestsPerSecond)} requests/s (aim: >= 0.90 x cores)`,
    ),
    comparison(
      `Through Nginx (${proxy.nginxWorkers} worker, JSON access log) vs direct`,
      "GET /",
      ["direct to the app", "through Nginx"],
      proxy.direct,
      proxy.proxied,
      `through Nginx / direct: ${ratio(proxy.proxied.requestsPerSecond, proxy.direct.requestsPerSecond)} requests/s (aim: >= 0.75x)`,
    ),
    comparison(
      "Metrics on vs off",
      "GET /, one process",
      ["metrics off", "metrics on"],
      metrics.without,
      metrics.with,
      `with / without metrics: ${ratio(metrics.with.requestsPerSecond, metrics.without.requestsPerSecond)} requests/s`,
    ),
  ];
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><title>NodeScale bench</title>',
    "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111}h1{font-size:20px}h2{font-size:16px;margin:24px 0 4px}",
    ".ratio{margin:0 0 8px;color:#333}.charts{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fafafa;border:1px solid #ddd}</style>",
    "</head><body>",
    "<h1>NodeScale bench: measured side by side in one run</h1>",
    `<p>${html(r.when)} &middot; ${html(r.machine)} &middot; autocannon, 16 connections, ${r.seconds} s per run, load generator on the same machine</p>`,
    ...sections,
    "</body></html>",
    "",
  ].join("\n");
}
