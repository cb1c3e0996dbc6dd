import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { configJsonSchema } from "../stacks/config-json-schema";

// npm run schema: regenerates nodescale.schema.json (a test fails when the committed copy is stale).
const target = resolve(__dirname, "..", "..", "nodescale.schema.json");
writeFileSync(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target}\n`);
