import { CrashTracker } from "../../app/src/supervisor";

describe("worker restart policy", () => {
  it("backs off exponentially and gives up on the fifth crash within a minute", () => {
    const tracker = new CrashTracker();
    const delays = [0, 1_000, 2_000, 3_000, 4_000].map((t) => tracker.recordCrash(t));
    expect(delays).toEqual([100, 200, 400, 800, undefined]);
  });

  it("forgets crashes older than the window, so a rare crash restarts quickly again", () => {
    const tracker = new CrashTracker();
    for (const t of [0, 1_000, 2_000, 3_000]) tracker.recordCrash(t);
    expect(tracker.recordCrash(70_000)).toBe(100);
    expect(tracker.recentCrashes).toBe(1);
  });

  it("caps the delay", () => {
    const tracker = new CrashTracker({ baseDelayMs: 1_000, maxDelayMs: 3_000, maxCrashes: 10, windowMs: 60_000 });
    expect([0, 1, 2, 3].map((t) => tracker.recordCrash(t))).toEqual([1_000, 2_000, 3_000, 3_000]);
  });
});
