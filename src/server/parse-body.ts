import type { z } from "zod";
import { ValidationError } from "../core/errors.js";

/** Validate a request body / query at the edge: 400 `request_invalid` naming the first bad field. */
export function parseBody<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const at = issue.path.length ? issue.path.join(".") + ": " : "";
    throw new ValidationError(
      "request_invalid",
      at + (issue.code === "unrecognized_keys" ? `unknown field ${issue.keys.join(", ")}` : issue.message),
    );
  }
  return r.data;
}
