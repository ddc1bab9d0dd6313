import type { AcmeResponse } from "../context.js";

/**
 * RFC 8555 §7.2 Getting a Nonce: HEAD answers 200, GET 204; the nonce itself is added to every
 * response by the plugin, like on every other ACME response.
 */
export function newNonce(method: "HEAD" | "GET"): AcmeResponse {
  return { status: method === "HEAD" ? 200 : 204 };
}
