import { AgentAuthError, errorText } from "../agent-errors.js";

/**
 * The few HTTP calls auth methods make (token endpoints, metadata servers): a timeout on every call,
 * a size cap on every answer, and failures as AgentAuthError with the endpoint in the internal detail.
 */
export type FetchLike = (
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
    redirect?: "manual" | "follow" | "error";
  },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

export const TOKEN_FETCH_TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface TokenResponse {
  status: number;
  headers: { get(name: string): string | null };
  body: string;
}

/** One request with a timeout joined to the caller's signal. Network errors become `auth_endpoint_unreachable`. */
export async function requestToken(
  fetch: FetchLike,
  method: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  signal: AbortSignal,
): Promise<TokenResponse> {
  const joined = AbortSignal.any([signal, AbortSignal.timeout(TOKEN_FETCH_TIMEOUT_MS)]);
  try {
    const res = await fetch(url, { ...init, signal: joined, redirect: "error" });
    const body = await res.text();
    if (body.length > MAX_ANSWER_BYTES) {
      throw new AgentAuthError(
        method,
        "auth_endpoint_answer_too_large",
        "the token endpoint's answer is too large",
        {
          internal: url,
        },
      );
    }
    return { status: res.status, headers: res.headers, body };
  } catch (e) {
    if (e instanceof AgentAuthError) throw e;
    if (signal.aborted) throw e;
    throw new AgentAuthError(
      method,
      "auth_endpoint_unreachable",
      `cannot reach the ${method} token endpoint`,
      {
        internal: `${stripQuery(url)}: ${errorText(e)}`,
        cause: e,
      },
    );
  }
}

/** Fail unless 2xx; the body's first bytes go to the internal detail (endpoints do not echo secrets). */
export function expectOk(method: string, url: string, res: TokenResponse): void {
  if (res.status >= 200 && res.status < 300) return;
  throw new AgentAuthError(
    method,
    "auth_endpoint_refused",
    `the ${method} token endpoint answered ${res.status}`,
    {
      internal: `${stripQuery(url)}: ${res.status} ${res.body.slice(0, 300)}`,
      details: { status: res.status },
    },
  );
}

/** Parse `{ "<field>": "<token>" }` from a 2xx JSON answer. */
export function tokenField(method: string, url: string, res: TokenResponse, field: string): string {
  expectOk(method, url, res);
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    throw new AgentAuthError(
      method,
      "auth_endpoint_answer_invalid",
      "the token endpoint did not answer JSON",
      {
        internal: stripQuery(url),
      },
    );
  }
  const value = (parsed as Record<string, unknown> | null)?.[field];
  if (typeof value !== "string" || value.length === 0) {
    throw new AgentAuthError(
      method,
      "auth_endpoint_answer_invalid",
      `the token endpoint's answer has no ${field}`,
      {
        internal: stripQuery(url),
      },
    );
  }
  return value;
}

function stripQuery(url: string): string {
  const i = url.indexOf("?");
  return i < 0 ? url : url.slice(0, i);
}
