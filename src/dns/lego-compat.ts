import { unwrap } from "../config/schema-walk.js";
import type { DnsProviderDefinition } from "./registry.js";
import type { z } from "zod";

/**
 * le-cert-server (and lego) configure a DNS provider with lego's environment-variable names, e.g.
 * `{ CF_DNS_API_TOKEN: "…" }`. This maps such a map onto the provider's own config keys through the
 * definition's `legoEnv` table. Values arrive as strings, so a key whose schema is a number or boolean
 * is converted; anything unparseable is passed through for the schema to reject with a clear message.
 * Variables the provider does not know are dropped: lego configs commonly carry shared ones
 * (`*_TTL`, `*_HTTP_TIMEOUT`, …) that mean nothing here. `*_PROPAGATION_TIMEOUT` and
 * `*_POLLING_INTERVAL` do: config/resolve.ts turns them into the propagation check's timing.
 */
export function configFromLegoEnv(
  definition: Pick<DnsProviderDefinition<unknown>, "legoEnv" | "schema">,
  env: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const table = definition.legoEnv ?? {};
  const shape = objectShapeOf(definition.schema);
  const config: Record<string, unknown> = {};
  for (const [envName, key] of Object.entries(table)) {
    const value = env[envName];
    if (value === undefined || value === "" || key in config) continue;
    config[key] = coerce(value, shape?.[key]);
  }
  return config;
}

function objectShapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let cur = unwrap(schema);
  // A refined/piped object (e.g. "one of two keys required") keeps its shape one level in.
  for (let i = 0; i < 3 && cur.type !== "object"; i++) {
    const inner = (cur.schema as unknown as { _zod: { def: { in?: z.ZodType; schema?: z.ZodType } } })._zod
      .def;
    const next = inner.in ?? inner.schema;
    if (!next) break;
    cur = unwrap(next);
  }
  if (cur.type !== "object") return undefined;
  return (cur.schema as unknown as { _zod: { def: { shape: Record<string, z.ZodType> } } })._zod.def.shape;
}

function coerce(value: string, schema: z.ZodType | undefined): unknown {
  if (!schema) return value;
  const type = unwrap(schema).type;
  if (type === "number" && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  if (type === "boolean") {
    const v = value.trim().toLowerCase();
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
  }
  return value;
}
