// autocannon has no bundled types; this is the part of its result the tests read.
// eslint-disable-next-line
const autocannon = require("autocannon") as (opts: Record<string, unknown>) => Promise<LoadResult> & { stop?: () => void };

export interface LoadResult {
  readonly requests: { readonly total: number; readonly average: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly resets: number;
  readonly "2xx": number;
}

/** Steady load on a URL for `seconds`, bounded in time; resolves with autocannon's totals. */
export function steadyLoad(url: string, seconds: number, connections = 8): Promise<LoadResult> {
  return autocannon({ url, connections, duration: seconds, timeout: 5 });
}

/**
 * Steady load that runs until `stop()` (bounded by `maxSeconds`), to span a whole deploy. Rate-limited: on two
 * cores a saturating load would starve the deploy it measures (every request still counts the same).
 */
export function loadDuring(url: string, maxSeconds = 300, connections = 8, requestsPerSecond = 500): { stop: () => Promise<LoadResult> } {
  const run = autocannon({ url, connections, duration: maxSeconds, timeout: 5, overallRate: requestsPerSecond });
  return {
    stop: () => {
      run.stop?.();
      return run;
    },
  };
}

/** What a test asserts: every request sent got a 2xx. */
export function failures(result: LoadResult): { sent: number; failed: number } {
  return { sent: result.requests.total + result.errors, failed: result.errors + result.non2xx };
}
