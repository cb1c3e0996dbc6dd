/** Keeps this thread busy for about `ms` milliseconds; returns the number of loop iterations done. */
export function burnCpu(ms: number): number {
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  return spins;
}
