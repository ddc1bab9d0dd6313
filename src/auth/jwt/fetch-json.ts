import { UpstreamError } from "../../core/errors.js";

/**
 * GET a small JSON document from an identity provider (discovery, JWKS, SPIFFE bundle): always with a
 * timeout, never following redirects, and reading at most `maxBytes` of the body. Any failure is an
 * UpstreamError `identity_provider_unavailable` (503, retryable): an unreachable provider is not the
 * caller's fault and must not look like a bad credential.
 */

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface FetchJsonOptions {
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

function unavailable(url: string, detail: string, cause?: unknown): UpstreamError {
  return new UpstreamError("identity_provider_unavailable", "the identity provider could not be reached", {
    status: 503,
    internal: `${url}: ${detail}`,
    retryAfter: 5,
    cause,
  });
}

async function readCapped(response: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw unavailable(url, `document larger than ${maxBytes} bytes`);
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw unavailable(url, `document larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function fetchJson(fetch: FetchLike, url: string, options: FetchJsonOptions): Promise<unknown> {
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.signal) signals.push(options.signal);
  const signal = AbortSignal.any(signals);
  let text: string;
  try {
    const response = await fetch(url, {
      method: "GET",
      redirect: "error",
      signal,
      headers: { accept: "application/json" },
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw unavailable(url, `HTTP ${response.status}`);
    }
    text = await readCapped(response, options.maxBytes, url);
  } catch (e) {
    if (e instanceof UpstreamError) throw e;
    if (options.signal?.aborted) throw e;
    throw unavailable(url, e instanceof Error ? `${e.name}: ${e.message}` : String(e), e);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw unavailable(url, "response is not JSON", e);
  }
}
