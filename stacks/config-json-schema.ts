import { z } from "zod";
import { configSchema } from "./config-schema";

/** JSON Schema of nodescale.config.json, generated from the same zod source that validates it. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }),
    title: "NodeScale configuration (nodescale.config.json)",
  };
}
