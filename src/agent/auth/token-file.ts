import { readFile } from "node:fs/promises";
import { AgentAuthError } from "../agent-errors.js";

/** Longest token file we read: projected tokens are a few KiB. */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * Read a token the platform keeps in a file (projected service-account tokens, web identity tokens),
 * re-read on every use because the platform rotates it in place. Whitespace around it is dropped.
 */
export async function readTokenFile(method: string, path: string, signal: AbortSignal): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, { encoding: "utf8", signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new AgentAuthError(method, "auth_token_file_unreadable", `cannot read the token file ${path}`, {
      internal: (e as NodeJS.ErrnoException).code ?? String(e),
      details: { path },
      cause: e,
    });
  }
  const token = text.trim();
  if (token.length === 0 || token.length > MAX_TOKEN_FILE_BYTES) {
    throw new AgentAuthError(
      method,
      "auth_token_file_invalid",
      `the token file ${path} is empty or too large`,
      {
        details: { path },
      },
    );
  }
  return token;
}
