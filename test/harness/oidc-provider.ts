import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import Provider from "oidc-provider";

/**
 * A real OpenID Connect provider (`oidc-provider` v9) on 127.0.0.1:<free port>, set up for machines:
 * one client-credentials client, resource indicators enabled, JWT access tokens for the resource
 * `resource` (audience) carrying the scopes `scopes`. `rotateKeys` swaps in a new provider instance on
 * the same URL with a new signing key (published first) and, unless told to drop them, the old keys
 * (still published, no longer used to sign) — what a provider's key rollover looks like from outside.
 */

export interface OidcProviderHarness {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The resource indicator whose tokens are JWTs (use it as the audience). */
  resource: string;
  /** A second resource server (a wrong audience for certfleet). */
  otherResource: string;
  /** Client-credentials token; `scope` omitted = no scope requested. */
  getToken(options?: { resource?: string; scope?: string }): Promise<string>;
  /** kid of the key that signs new tokens. */
  signingKid(): string;
  /** Publish a new signing key; keep the old ones published unless `dropOld`. */
  rotateKeys(options?: { dropOld?: boolean }): Promise<void>;
  /** Remove every key except the current signing key. */
  dropOldKeys(): Promise<void>;
  close(): Promise<void>;
}

const SCOPES = ["certificates:request", "certificates:read"];

async function newSigningKey(index: number): Promise<JWK> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return {
    ...jwk,
    kid: `oidc-key-${index}-${Math.random().toString(36).slice(2, 8)}`,
    alg: "ES256",
    use: "sig",
  };
}

export async function startOidcProvider(
  options: { accessTokenTTL?: number } = {},
): Promise<OidcProviderHarness> {
  const clientId = "fleet-agent";
  const clientSecret = "fleet-agent-secret-0123456789abcdef";
  let keys: JWK[] = [await newSigningKey(0)];
  let keyCounter = 1;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const server: Server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const resource = `https://certfleet.test/api`;
  const otherResource = `https://other-service.test/`;

  const build = () => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          grant_types: ["client_credentials"],
          redirect_uris: [],
          response_types: [],
          scope: SCOPES.join(" "),
          id_token_signed_response_alg: "ES256",
        },
      ],
      scopes: SCOPES,
      jwks: { keys },
      ttl: { ClientCredentials: () => options.accessTokenTTL ?? 300 },
      features: {
        clientCredentials: { enabled: true },
        introspection: { enabled: false },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, indicator: string) => {
            if (indicator !== resource && indicator !== otherResource)
              throw new Provider.errors.InvalidTarget();
            return {
              scope: SCOPES.join(" "),
              audience: indicator,
              accessTokenTTL: options.accessTokenTTL ?? 300,
              accessTokenFormat: "jwt",
              jwt: { sign: { alg: "ES256" } },
            };
          },
        },
      },
    });
    handler = provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  };
  build();

  return {
    issuer,
    clientId,
    clientSecret,
    resource,
    otherResource,
    async getToken(request = {}) {
      const body = new URLSearchParams({
        grant_type: "client_credentials",
        resource: request.resource ?? resource,
      });
      if (request.scope !== undefined) body.set("scope", request.scope);
      const response = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: "Basic " + Buffer.from(`${clientId}:${clientSecret}`).toString("base64"),
        },
        body,
      });
      const json = (await response.json()) as {
        access_token?: string;
        error?: string;
        error_description?: string;
      };
      if (!response.ok || !json.access_token)
        throw new Error(`token request failed: ${response.status} ${json.error} ${json.error_description}`);
      return json.access_token;
    },
    signingKid: () => keys[0]!.kid!,
    async rotateKeys(rotate = {}) {
      const fresh = await newSigningKey(keyCounter++);
      keys = rotate.dropOld ? [fresh] : [fresh, ...keys];
      build();
    },
    async dropOldKeys() {
      keys = [keys[0]!];
      build();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
