import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";

/**
 * A real OpenID Connect provider (`oidc-provider` v9) for people logging in: one public native client
 * (no secret, PKCE required, loopback redirect on any port), authorization code + refresh tokens, and
 * the provider's built-in development login/consent pages — which the fake browser fills in. Any login
 * name is accepted and becomes the subject.
 */
export interface OidcLoginProvider {
  issuer: string;
  clientId: string;
  /** Token endpoint grants seen, in order (authorization_code, refresh_token). */
  grants: string[];
  close(): Promise<void>;
}

export async function startOidcLoginProvider(): Promise<OidcLoginProvider> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "login-key", alg: "ES256", use: "sig" };
  const clientId = "certfleet-cli";
  const grants: string[] = [];
  // The provider needs the issuer URL, which needs the port: the server forwards to it once it exists.
  const target: { handler?: (req: IncomingMessage, res: ServerResponse) => void } = {};
  const server: Server = createServer((req, res) => {
    if (req.method === "POST" && req.url?.startsWith("/token")) {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        grants.push(new URLSearchParams(body).get("grant_type") ?? "?");
      });
    }
    target.handler!(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: ["http://127.0.0.1/callback"],
        id_token_signed_response_alg: "ES256",
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ["openid", "profile", "email", "offline_access"],
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, RefreshToken: 3600, IdToken: 600 },
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, email: `${sub}@example.com` }),
    }),
  });
  target.handler = provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  return {
    issuer,
    clientId,
    grants,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
