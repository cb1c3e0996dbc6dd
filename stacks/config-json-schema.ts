import { z } from "zod";
import { CONFIG_DESCRIPTIONS } from "./config-descriptions";
import { configSchema } from "./config-schema";

type JsonSchema = { properties?: Record<string, JsonSchema>; anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; description?: string };

/** Every object property in a JSON Schema, by dotted path (the branches of a union share their parent's path). */
export function schemaProperties(node: JsonSchema, prefix = ""): [string, JsonSchema][] {
  const found: [string, JsonSchema][] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    found.push([`${prefix}${key}`, child], ...schemaProperties(child, `${prefix}${key}.`));
  }
  for (const branch of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) found.push(...schemaProperties(branch, prefix));
  return found;
}

/** JSON Schema of nodescale.config.json, generated from the same zod source that validates it, every key explained. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema & Record<string, unknown>;
  for (const [path, property] of schemaProperties(schema)) {
    const description = CONFIG_DESCRIPTIONS[path];
    if (description !== undefined) property.description = description;
  }
  return { ...schema, title: "NodeScale configuration (nodescale.config.json)" };
}
