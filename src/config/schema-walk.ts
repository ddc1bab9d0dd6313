import type { z } from "zod";

/** Small read-only walker over zod 4 schemas, for env mapping and the generated reference. */

type AnySchema = z.ZodType;
interface Def {
  type: string;
  innerType?: AnySchema;
  shape?: Record<string, AnySchema>;
  element?: AnySchema;
  options?: AnySchema[];
  valueType?: AnySchema;
  defaultValue?: unknown;
  entries?: Record<string, string>;
  values?: unknown[];
}

function def(s: AnySchema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

export interface Unwrapped {
  schema: AnySchema;
  type: string;
  optional: boolean;
  defaultValue: unknown;
  description: string | undefined;
}

/** Strip optional/default/prefault/nullable wrappers, remembering what they said. */
export function unwrap(s: AnySchema): Unwrapped {
  let cur = s;
  let optional = false;
  let defaultValue: unknown = undefined;
  let description = s.description;
  for (;;) {
    const d = def(cur);
    if (d.type === "optional" || d.type === "nullable") optional = true;
    else if (d.type === "default" || d.type === "prefault") {
      optional = true;
      if (defaultValue === undefined) {
        const v = d.defaultValue;
        defaultValue = typeof v === "function" ? (v as () => unknown)() : v;
      }
    } else break;
    cur = d.innerType!;
    description ??= cur.description;
  }
  return {
    schema: cur,
    type: def(cur).type,
    optional,
    defaultValue,
    description: description ?? cur.description,
  };
}

export function objectShape(s: AnySchema): Record<string, AnySchema> | undefined {
  const u = unwrap(s);
  return u.type === "object" ? def(u.schema).shape : undefined;
}

export function arrayElement(s: AnySchema): AnySchema | undefined {
  const u = unwrap(s);
  return u.type === "array" ? def(u.schema).element : undefined;
}

export function unionOptions(s: AnySchema): AnySchema[] | undefined {
  const u = unwrap(s);
  return u.type === "union" ? def(u.schema).options : undefined;
}

/** A short human type label: string, number, boolean, list of …, one of a|b, map. */
export function typeLabel(s: AnySchema): string {
  const u = unwrap(s);
  const d = def(u.schema);
  switch (u.type) {
    case "enum":
      return "one of " + Object.values(d.entries ?? {}).join(" | ");
    case "literal":
      return JSON.stringify(d.values?.[0]);
    case "array":
      return "list of " + typeLabel(d.element!);
    case "record":
      return "map";
    case "union":
      return (d.options ?? []).map(typeLabel).join(" or ");
    case "object":
      return "section";
    default:
      return u.type;
  }
}
