import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { isAllowedAddress } from "../acme-server/validation/address-policy.js";
import { UpstreamError, ValidationError } from "../core/errors.js";

export interface SafePostOptions {
  /** Let the URL reach loopback / private / link-local addresses and use plain http. */
  allowPrivateAddresses: boolean;
  /** Per-request limit (default 10 s). */
  timeoutMs?: number;
}

/**
 * Check a user-supplied webhook URL before it is stored or used: https only (unless private addresses
 * are allowed, which is for tests and closed networks), no credentials in the URL, and a literal IP
 * host must be a public address. Throws ValidationError `notification_url_refused`.
 */
export function checkWebhookUrl(raw: string, options: Pick<SafePostOptions, "allowPrivateAddresses">): URL {
  const url = new URL(raw);
  const refuse = (why: string) => {
    throw new ValidationError("notification_url_refused", `webhook URL refused: ${why}`);
  };
  if (url.protocol !== "https:" && !(url.protocol === "http:" && options.allowPrivateAddresses))
    refuse("https is required (notifications.allowPrivateAddresses permits http)");
  if (url.username || url.password) refuse("credentials in the URL are not allowed");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) && !isAllowedAddress(host, options.allowPrivateAddresses))
    refuse(`${host} is a private, loopback or reserved address (notifications.allowPrivateAddresses)`);
  return url;
}

/**
 * POST a JSON body to a user-supplied URL with an SSRF guard: every address the host name resolves to
 * is checked at connect time (so DNS rebinding between check and connect does not help), redirects are
 * not followed, and the request is bounded in time. Resolves on a 2xx answer; otherwise throws
 * UpstreamError `notification_delivery_failed` (retryable except on 4xx other than 408/429).
 */
export async function safePostJson(
  rawUrl: string,
  body: string,
  headers: Record<string, string>,
  options: SafePostOptions,
  signal: AbortSignal,
): Promise<void> {
  const url = checkWebhookUrl(rawUrl, options);
  const guardedLookup: LookupFunction = (hostname, opts, callback) => {
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const refused = addresses.find((a) => !isAllowedAddress(a.address, options.allowPrivateAddresses));
      if (refused || addresses.length === 0)
        return callback(
          new ValidationError(
            "notification_url_refused",
            `webhook host ${hostname} resolves to a private, loopback or reserved address`,
          ),
          "",
          0,
        );
      if (opts.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const combined = AbortSignal.any([signal, timeout]);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const status = await new Promise<number>((resolve, reject) => {
    const req = send(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          "user-agent": "certfleet-notifications",
          ...headers,
        },
        lookup: guardedLookup,
        signal: combined,
      },
      (res) => {
        res.resume(); // the answer's body is not needed; drain it so the socket is released
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  }).catch((e: unknown) => {
    if (e instanceof ValidationError) throw e;
    throw new UpstreamError("notification_delivery_failed", `webhook request failed: ${errorText(e)}`, {
      retryable: true,
    });
  });
  if (status < 200 || status > 299) {
    const retryable = status >= 500 || status === 408 || status === 429;
    throw new UpstreamError("notification_delivery_failed", `webhook answered HTTP ${status}`, { retryable });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
