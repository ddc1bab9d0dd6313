import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { AcmeProfileConfig } from "../config.js";
import { problem } from "../problems.js";
import { checkedAddress } from "./dial.js";
import type { ValidationDns } from "./dns-lookup.js";
import type { ChallengeToValidate } from "./validator.js";

/**
 * HTTP-01 (RFC 8555 §8.3): GET http://<domain>:<port>/.well-known/acme-challenge/<token> and compare
 * the body (trailing whitespace trimmed) with the key authorization. Each hop resolves its host once
 * and connects to the checked address; at most MAX_REDIRECTS redirects, only to http on the
 * configured HTTP-01 port or https on 443 / the TLS-ALPN-01 port, never to an IP literal; the body is
 * read up to MAX_BODY_BYTES. The certificate of an https redirect target is not checked (§8.3).
 */
const MAX_REDIRECTS = 5;
const MAX_BODY_BYTES = 8 * 1024;

export async function validateHttp01(
  challenge: ChallengeToValidate,
  profile: AcmeProfileConfig,
  dns: ValidationDns,
  signal: AbortSignal,
): Promise<void> {
  let url = new URL(
    `http://${challenge.domain}:${profile.ports.http01}/.well-known/acme-challenge/${challenge.token}`,
  );
  for (let hop = 0; ; hop++) {
    const address = await checkedAddress(dns, url.hostname, profile.allowPrivateAddresses, signal);
    const res = await get(url, address, signal);
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      if (hop >= MAX_REDIRECTS) throw problem("connection", "too many redirects");
      url = redirectTarget(url, res.location, profile);
      continue;
    }
    if (res.status !== 200) {
      throw problem("unauthorized", `the challenge URL answered HTTP ${res.status}`, { internal: url.href });
    }
    if (res.body.replace(/\s+$/, "") !== challenge.keyAuthorization) {
      throw problem("incorrectResponse", "the challenge URL did not return the key authorization");
    }
    return;
  }
}

function redirectTarget(from: URL, location: string, profile: AcmeProfileConfig): URL {
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw problem("connection", "invalid redirect location");
  }
  const host = to.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) !== 0) throw problem("connection", "redirects to IP addresses are not followed");
  const port = to.port === "" ? (to.protocol === "https:" ? 443 : 80) : Number(to.port);
  const allowed =
    (to.protocol === "http:" && port === profile.ports.http01) ||
    (to.protocol === "https:" && (port === 443 || port === profile.ports.tlsAlpn01));
  if (!allowed)
    throw problem("connection", "redirects only to the HTTP-01 port (http) or 443 (https)", {
      internal: to.href,
    });
  return to;
}

interface HttpResult {
  status: number;
  location: string | undefined;
  body: string;
}

function get(url: URL, address: string, signal: AbortSignal): Promise<HttpResult> {
  const https = url.protocol === "https:";
  const port = url.port === "" ? (https ? 443 : 80) : Number(url.port);
  const options = {
    host: address,
    port,
    path: `${url.pathname}${url.search}`,
    method: "GET",
    headers: { Host: url.host, "User-Agent": "certfleet-acme-validator", Accept: "*/*", Connection: "close" },
    setHost: false,
    signal,
    ...(https ? { servername: url.hostname, rejectUnauthorized: false } : {}),
  };
  return new Promise<HttpResult>((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const location = typeof res.headers.location === "string" ? res.headers.location : undefined;
      if (status >= 300 && status < 400) {
        res.resume();
        return resolve({ status, location, body: "" });
      }
      let body = Buffer.alloc(0);
      res.on("data", (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]);
        if (body.length > MAX_BODY_BYTES) {
          res.destroy();
          reject(problem("unauthorized", "the challenge response is too large"));
        }
      });
      res.on("end", () => resolve({ status, location, body: body.toString("utf8") }));
      res.on("error", (e) => reject(connectionProblem(url, e)));
    };
    const req = https ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
    req.on("error", (e) => reject(connectionProblem(url, e)));
    req.end();
  });
}

function connectionProblem(url: URL, e: Error) {
  return problem("connection", `could not fetch ${url.protocol}//${url.host}${url.pathname}`, {
    internal: `${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`,
  });
}
