import { parseExposition, type Sample } from "../../cli/exposition";
import { get } from "./processes";

export { parseExposition };

/** Requests counted for `route` in one scrape, per process (pid). */
export function requestsByPid(samples: readonly Sample[], route = "/"): Map<string, number> {
  const byPid = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== "http_request_duration_seconds_count" || s.labels.route !== route) continue;
    byPid.set(s.labels.pid, (byPid.get(s.labels.pid) ?? 0) + s.value);
  }
  return byPid;
}

export const total = (byPid: Map<string, number>): number => [...byPid.values()].reduce((a, b) => a + b, 0);

/** One scrape of http://127.0.0.1:<port>/metrics, parsed; fails on anything but 200. */
export async function scrape(port: number): Promise<{ text: string; samples: Sample[] }> {
  const answer = await get(port, "/metrics");
  if (answer.status !== 200) throw new Error(`GET /metrics on port ${port}: ${answer.status} ${answer.body}`);
  return { text: answer.body, samples: parseExposition(answer.body) };
}

/** The pids that have a sample of `name` in a scrape. */
export const pidsWith = (samples: readonly Sample[], name: string): Set<string> =>
  new Set(samples.filter((s) => s.name === name).map((s) => s.labels.pid));
