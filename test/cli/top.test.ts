import { parseExposition } from "../../cli/exposition";
import { processStates, quantileBetween, renderTop, topRows } from "../../cli/top";

const scrapeText = (requests: Record<string, [number, number, number]>) =>
  Object.entries(requests)
    .flatMap(([pid, [fast, slow, rss]]) => [
      `http_request_duration_seconds_bucket{le="0.001",pid="${pid}",worker="${pid === "10" ? 1 : 2}",route="/",status="200"} ${fast}`,
      `http_request_duration_seconds_bucket{le="0.01",pid="${pid}",worker="${pid === "10" ? 1 : 2}",route="/",status="200"} ${fast + slow}`,
      `http_request_duration_seconds_bucket{le="+Inf",pid="${pid}",worker="${pid === "10" ? 1 : 2}",route="/",status="200"} ${fast + slow}`,
      `http_request_duration_seconds_count{pid="${pid}",worker="${pid === "10" ? 1 : 2}",route="/",status="200"} ${fast + slow}`,
      `process_resident_memory_bytes{pid="${pid}",worker="1"} ${rss * 1024 * 1024}`,
      `nodejs_eventloop_lag_p99_seconds{pid="${pid}",worker="1"} 0.0125`,
      `nodescale_process_restarts{pid="${pid}",worker="1"} 2`,
    ])
    .join("\n");

describe("nodescale top", () => {
  it("turns two scrapes one second apart into one row per process: requests/s, p50/p95, lag, memory, restarts", () => {
    const before = processStates(parseExposition(scrapeText({ "10": [100, 0, 50], "11": [0, 0, 60] })));
    const after = processStates(parseExposition(scrapeText({ "10": [190, 10, 51], "11": [0, 40, 61] })));
    const rows = topRows(before, after, 2);
    expect(rows.map((r) => [r.pid, r.requestsPerSecond, r.memoryMiB, r.loopLagMs, r.restarts])).toEqual([
      ["10", 50, 51, 12.5, 2],
      ["11", 20, 61, 12.5, 2],
    ]);
    // 90 of 100 requests under 1 ms: p50 interpolates inside the first bucket, p95 inside the second.
    expect(rows[0].p50Ms).toBeCloseTo(((0.5 * 100 * 0.001) / 90) * 1000, 6);
    expect(rows[0].p95Ms).toBeCloseTo(1 + 9 * ((95 - 90) / 10), 6);
    expect(rows[1].p50Ms).toBeCloseTo(1 + 9 * 0.5, 6);
  });

  it("says nothing about latency for a process that answered nothing in the interval", () => {
    const same = processStates(parseExposition(scrapeText({ "10": [5, 0, 50] })));
    expect(topRows(same, same, 1)[0]).toMatchObject({ requestsPerSecond: 0, p50Ms: undefined, p95Ms: undefined });
    expect(quantileBetween(undefined, new Map([[Number.POSITIVE_INFINITY, 0]]), 0.5)).toBeUndefined();
  });

  it("draws a header, a row per process and the total", () => {
    const after = processStates(parseExposition(scrapeText({ "10": [10, 0, 50] })));
    const screen = renderTop("http://127.0.0.1:9464", topRows(new Map(), after, 1), new Date("2026-11-23T12:00:00Z"));
    expect(screen.split("\n")).toEqual([
      "nodescale top  http://127.0.0.1:9464  2026-11-23T12:00:00.000Z  (every 1 s; Ctrl-C quits)",
      "",
      "PID  WORKER  REQ/S  P50 MS  P95 MS  LAG P99 MS  RSS MIB  RESTARTS",
      "10   1        10.0    0.50    0.95       12.50     50.0         2",
      "",
      "1 process(es), 10.0 requests/s in all",
    ]);
  });
});
