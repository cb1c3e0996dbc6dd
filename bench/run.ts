import { join } from "node:path";
import { appScaling } from "./app-scaling";
import { synthCost } from "./synth-cost";

// npm run bench: each benchmark prints ratios of two things measured side by side in this run.
const root = join(__dirname, "..", "..");
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

async function main(): Promise<void> {
  await appScaling(root, seconds);
  await synthCost(root, rounds);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
