import { FlattenedSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import type { Agent } from "undici";
import { request } from "undici";
import { createHmac } from "node:crypto";

/**
 * A deliberately small ACME client for protocol tests: it builds every JWS by hand so a test can
 * forge any part of it (algorithm, nonce, url, kid/jwk, extra signatures).
 */
export interface AccountKey {
  alg: "ES256" | "ES384" | "RS256" | "EdDSA";
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function newAccountKey(alg: AccountKey["alg"] = "ES256"): Promise<AccountKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk: jwk };
}

export interface AcmeHttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: Record<string, unknown>;
  nonce: string | undefined;
  location: string | undefined;
}

export const b64 = (data: string | Uint8Array) => Buffer.from(data).toString("base64url");

export async function signJws(
  key: AccountKey,
  header: Record<string, unknown>,
  payload: unknown,
): Promise<{ protected: string; payload: string; signature: string }> {
  const bytes = payload === "" ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
  const jws = await new FlattenedSign(bytes)
    .setProtectedHeader({ alg: key.alg, ...header } as never)
    .sign(key.privateKey);
  return jws as { protected: string; payload: string; signature: string };
}

/** An EAB binding as RFC 8555 §7.3.4 describes it. */
export function eabBinding(kid: string, hmacKeyB64url: string, url: string, accountJwk: JWK) {
  const protectedB64 = b64(JSON.stringify({ alg: "HS256", kid, url }));
  const payloadB64 = b64(JSON.stringify(accountJwk));
  const signature = createHmac("sha256", Buffer.from(hmacKeyB64url, "base64url"))
    .update(`${protectedB64}.${payloadB64}`)
    .digest("base64url");
  return { protected: protectedB64, payload: payloadB64, signature };
}

export class TestAcmeClient {
  directory: Record<string, string> = {};
  kid: string | undefined;
  /** Where a URL is actually sent (e.g. to one replica behind a shared external URL). */
  route: (url: string) => string = (url) => url;

  constructor(
    readonly directoryUrl: string,
    readonly agent: Agent,
    public key: AccountKey,
  ) {}

  async init(): Promise<this> {
    const res = await this.get(this.directoryUrl);
    this.directory = res.body as Record<string, string>;
    return this;
  }

  async get(url: string, method: "GET" | "HEAD" = "GET"): Promise<AcmeHttpResult> {
    const res = await request(this.route(url), { method, dispatcher: this.agent });
    return toResult(res.statusCode, res.headers, await res.body.text());
  }

  async nonce(): Promise<string> {
    const res = await this.get(this.directory.newNonce!, "HEAD");
    return res.nonce!;
  }

  /** POST a raw body (anything) with a content type. */
  async postRaw(url: string, body: string, contentType = "application/jose+json"): Promise<AcmeHttpResult> {
    const res = await request(this.route(url), {
      method: "POST",
      body,
      headers: { "content-type": contentType },
      dispatcher: this.agent,
    });
    return toResult(res.statusCode, res.headers, await res.body.text());
  }

  /** A normal signed POST: kid when the client has an account (unless `useJwk`), else jwk. */
  async post(
    url: string,
    payload: unknown,
    opts: { useJwk?: boolean; header?: Record<string, unknown>; key?: AccountKey; nonce?: string } = {},
  ): Promise<AcmeHttpResult> {
    const key = opts.key ?? this.key;
    const header: Record<string, unknown> = {
      nonce: opts.nonce ?? (await this.nonce()),
      url,
      ...(this.kid && !opts.useJwk ? { kid: this.kid } : { jwk: key.publicJwk }),
      ...opts.header,
    };
    for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
    const jws = await signJws(key, header, payload);
    return this.postRaw(url, JSON.stringify(jws));
  }

  async register(
    eab?: { kid: string; hmacKey: string },
    extra: Record<string, unknown> = {},
  ): Promise<AcmeHttpResult> {
    const url = this.directory.newAccount!;
    const res = await this.post(
      url,
      {
        termsOfServiceAgreed: true,
        contact: ["mailto:ops@example.com"],
        ...(eab ? { externalAccountBinding: eabBinding(eab.kid, eab.hmacKey, url, this.key.publicJwk) } : {}),
        ...extra,
      },
      { useJwk: true },
    );
    if (res.status === 201 || res.status === 200) this.kid = res.location;
    return res;
  }
}

function toResult(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  text: string,
): AcmeHttpResult {
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return {
    status,
    headers,
    text,
    body,
    nonce: one(headers["replay-nonce"]),
    location: one(headers["location"]),
  };
}

export const PROBLEM = (type: string) => `urn:ietf:params:acme:error:${type}`;

/** base64url DER of the first block of a PEM (CSR or certificate). */
export function pemToB64url(pem: string): string {
  const first = /-----BEGIN [^-]+-----([^-]+)-----END/.exec(pem)?.[1] ?? "";
  const body = first.replace(/\s+/g, "");
  return Buffer.from(body, "base64").toString("base64url");
}
