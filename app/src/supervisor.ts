/** Restart policy for crashed workers: exponential backoff, and a give-up limit for crash loops. */
export interface RestartPolicy {
  /** First restart delay. */
  readonly baseDelayMs: number;
  /** Largest restart delay. */
  readonly maxDelayMs: number;
  /** Crashes of one slot inside `windowMs` after which the slot is given up. */
  readonly maxCrashes: number;
  readonly windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseDelayMs: 100, maxDelayMs: 10_000, maxCrashes: 5, windowMs: 60_000 };

/** Tracks the crash history of one worker slot; pure, so the policy is unit-testable. */
export class CrashTracker {
  private crashes: number[] = [];

  constructor(private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY) {}

  /** Records a crash at `now`; returns the delay before restarting, or undefined to give up. */
  recordCrash(now: number): number | undefined {
    this.crashes = this.crashes.filter((t) => now - t < this.policy.windowMs);
    this.crashes.push(now);
    if (this.crashes.length >= this.policy.maxCrashes) return undefined;
    return Math.min(this.policy.baseDelayMs * 2 ** (this.crashes.length - 1), this.policy.maxDelayMs);
  }

  get recentCrashes(): number {
    return this.crashes.length;
  }
}
