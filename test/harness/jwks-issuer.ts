import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";

/**
 * A minimal token issuer on 127.0.0.1:<free port> that speaks the documented discovery protocol —
 * `{issuer}/.well-known/openid-configuration` with `issuer` and `jwks_uri`, the JWKS at `jwks_uri` —
 * plus a SPIFFE bundle endpoint (`/bundle`: the same public keys with `use: "jwt-svid"`). Keys are made
 * with jose; tests mint any token they like, including hostile ones (see the raw helpers below).
 *
 * `path` puts the issuer below the root (e.g. `/<tenant>/v2.0` for an Entra-ID-shaped issuer).
 */

export type SigningAlg = "RS256" | "ES256" | "PS256" | "EdDSA";

interface IssuerKey {
  kid: string;
  alg: SigningAlg;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  publicJwk: JWK;
  spkiPem: string;
}

export interface JwksIssuer {
  issuerUrl: string;
  jwksUri: string;
  /** SPIFFE bundle endpoint (JWT authorities with use "jwt-svid", plus one x509-svid entry to skip). */
  bundleUrl: string;
  /** Requests served so far, by document. */
  hits: { discovery: number; jwks: number; bundle: number };
  /** Add a signing key; the newest key signs by default. Returns its kid. */
  addKey(alg?: SigningAlg, kid?: string): Promise<string>;
  /** Stop publishing a key (tokens it signed can no longer be verified after a refetch). */
  removeKey(kid: string): void;
  /** The SPKI PEM of a key (for the HS256-with-public-key attack). */
  publicKeyPem(kid?: string): string;
  /** The published JWKS (what a SPIFFE bundle file would hold, with `use` set by the caller). */
  publicJwks(use?: string): { keys: JWK[] };
  /** Sign claims; `iss` defaults to issuerUrl, `iat` to now, `exp` to now + 300 s. */
  sign(
    claims: JWTPayload,
    options?: { kid?: string; header?: Record<string, unknown>; now?: Date },
  ): Promise<string>;
  /** Serve a different `issuer` in the discovery document (undefined = the real one). */
  setDiscoveryIssuer(value: string | undefined): void;
  /** Idempotent. */
  close(): Promise<void>;
}

export function base64url(value: string | Buffer | object): string {
  const bytes = Buffer.isBuffer(value)
    ? value
    : Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
  return bytes.toString("base64url");
}

/** `header.payload.signature` from raw parts (signature defaults to empty: an unsigned token). */
export function rawToken(header: object, payload: object, signature = ""): string {
  return `${base64url(header)}.${base64url(payload)}.${signature}`;
}

/** HS256 over header.payload with `secret` as the HMAC key (e.g. the issuer's public key bytes). */
export function hmacToken(header: object, payload: object, secret: string | Buffer): string {
  const input = `${base64url(header)}.${base64url(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

export async function startJwksIssuer(
  options: { path?: string; algs?: SigningAlg[] } = {},
): Promise<JwksIssuer> {
  const keys: IssuerKey[] = [];
  const hits = { discovery: 0, jwks: 0, bundle: 0 };
  const path = (options.path ?? "").replace(/\/$/, "");
  let discoveryIssuer: string | undefined;
  let counter = 0;

  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url === `${path}/.well-known/openid-configuration`) {
      hits.discovery++;
      return send({
        issuer: discoveryIssuer ?? issuerUrl,
        jwks_uri: jwksUri,
        id_token_signing_alg_values_supported: [...new Set(keys.map((k) => k.alg))],
      });
    }
    if (url === "/jwks") {
      hits.jwks++;
      return send(api.publicJwks());
    }
    if (url === "/bundle") {
      hits.bundle++;
      const jwt = api.publicJwks("jwt-svid").keys;
      // An X.509 authority entry the verifier must ignore for JWT-SVIDs.
      const x509Entry = { ...jwt[0], kid: "x509-authority", use: "x509-svid", x5c: ["MIIB"] };
      return send({ spiffe_sequence: 1, spiffe_refresh_hint: 300, keys: [...jwt, x509Entry] });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuerUrl = origin + path;
  const jwksUri = `${origin}/jwks`;

  const find = (kid?: string): IssuerKey => {
    const key = kid === undefined ? keys[keys.length - 1] : keys.find((k) => k.kid === kid);
    if (!key) throw new Error(`no key ${kid ?? "(any)"}`);
    return key;
  };

  const api: JwksIssuer = {
    issuerUrl,
    jwksUri,
    bundleUrl: `${origin}/bundle`,
    hits,
    async addKey(alg = "ES256", kid) {
      const { privateKey, publicKey } = await generateKeyPair(alg, {
        extractable: true,
        ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
      });
      const id = kid ?? `key-${++counter}-${alg.toLowerCase()}`;
      keys.push({
        kid: id,
        alg,
        privateKey,
        publicJwk: { ...(await exportJWK(publicKey)), kid: id, alg },
        spkiPem: await exportSPKI(publicKey),
      });
      return id;
    },
    removeKey(kid) {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i >= 0) keys.splice(i, 1);
    },
    publicKeyPem: (kid) => find(kid).spkiPem,
    publicJwks: (use = "sig") => ({ keys: keys.map((k) => ({ ...k.publicJwk, use })) }),
    async sign(claims, signOptions = {}) {
      const key = find(signOptions.kid);
      const now = Math.floor((signOptions.now ?? new Date()).getTime() / 1000);
      const body: JWTPayload = { iss: issuerUrl, iat: now, exp: now + 300, ...claims };
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      return new SignJWT(body)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...signOptions.header })
        .sign(key.privateKey);
    },
    setDiscoveryIssuer(value) {
      discoveryIssuer = value;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
  for (const alg of options.algs ?? ["ES256"]) await api.addKey(alg);
  return api;
}
