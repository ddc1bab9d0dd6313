import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { startEntraTokenEndpoint } from "../harness/metadata-servers/azure-entra.js";
import { startAzureImds } from "../harness/metadata-servers/azure-imds.js";
import { startGcpMetadata } from "../harness/metadata-servers/gcp-metadata.js";
import { startHimds, type Himds } from "../harness/metadata-servers/himds.js";
import type { LoopbackHttp } from "../harness/metadata-servers/loopback-http.js";
import { startOidcTokenEndpoint } from "../harness/metadata-servers/oidc-token-endpoint.js";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { chainVerifies, readPair } from "./support/pair-check.js";
import { readFile } from "node:fs/promises";

/**
 * The agent as a process with every token-based workload identity whose protocol runs on loopback:
 * generic OIDC JWT, Azure workload identity and managed identity, Azure Arc (HIMDS challenge), AWS web
 * identity, GCP metadata identity tokens and Kubernetes projected tokens. Each issuer is a real JWKS
 * issuer the server trusts; each endpoint is a loopback stand-in the agent is pointed at by config.
 */
const TENANT = "6a3f1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b";
const CERTFLEET_AUDIENCE = "api://certfleet";

describe("agent end to end: workload identities", () => {
  let server: TestServer;
  let oidc: JwksIssuer, entra: JwksIssuer, k8s: JwksIssuer, aws: JwksIssuer, gcp: JwksIssuer;
  const loopbacks: LoopbackHttp[] = [];
  let root: string;

  beforeAll(async () => {
    [oidc, entra, k8s, aws, gcp] = await Promise.all([
      startJwksIssuer(),
      startJwksIssuer({ path: `/${TENANT}/v2.0` }),
      startJwksIssuer(),
      startJwksIssuer(),
      startJwksIssuer(),
    ]);
    server = await startTestServer({
      issuers: [
        { issuerUrl: oidc.issuerUrl, audience: CERTFLEET_AUDIENCE, kind: "oidc" },
        { issuerUrl: entra.issuerUrl, audience: CERTFLEET_AUDIENCE, kind: "azure" },
        { issuerUrl: aws.issuerUrl, audience: "certfleet", kind: "aws" },
        { issuerUrl: gcp.issuerUrl, audience: "https://certfleet.example.com", kind: "gcp" },
        { issuerUrl: k8s.issuerUrl, audience: "certfleet", kind: "kubernetes" },
      ],
    });
    root = join(server.dir, "agents");
    await mkdir(root);
  });
  afterAll(async () => {
    await Promise.all(loopbacks.map((l) => l.close()));
    await server?.stop();
    await Promise.all([oidc, entra, k8s, aws, gcp].map((i) => i?.close()));
  });

  let counter = 0;
  /** Run `agent --once --json` for one certificate with `auth` (+ api.uuid when given); expect success. */
  async function syncWith(
    auth: Record<string, unknown>,
    domain: string,
    options: { apiUuid?: string; env?: Record<string, string> } = {},
  ) {
    const dir = join(root, `a${++counter}`);
    await mkdir(dir);
    const { path } = await writeAgentConfig(
      {
        api: {
          url: server.url,
          ca_bundle: server.caFile,
          ...(options.apiUuid ? { uuid: options.apiUuid } : {}),
        },
        auth,
        state_dir: "state",
        certificates: [
          {
            name: "svc",
            domains: [domain],
            outputs: { pem: { fullchain: "fullchain.pem", key: "key.pem" } },
          },
        ],
      },
      dir,
    );
    const result = await runAgent(["agent", "--config", path, "--once", "--json"], { env: options.env });
    return { dir, result };
  }

  async function expectInstalled(dir: string, domain: string) {
    const pair = await readPair(join(dir, "fullchain.pem"), join(dir, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual([domain]);
    expect(chainVerifies(await readFile(join(dir, "fullchain.pem"), "utf8"), server.caPem)).toBe(true);
  }

  it("oidc_jwt: GET token_endpoint with resource and client_id, UUID in auth.uuid", async () => {
    const endpoint = await startOidcTokenEndpoint(({ resource }) =>
      oidc.sign({ sub: "build-runner-3", aud: resource ?? "none" }),
    );
    loopbacks.push(endpoint);
    const identity = await server.createIdentity({
      name: "build-runner-3",
      method: "jwt",
      binding: { issuer: oidc.issuerUrl, subject: "build-runner-3" },
      grants: ["build.example.com"],
    });
    const { dir, result } = await syncWith(
      {
        method: "oidc_jwt",
        uuid: identity.id,
        token_endpoint: endpoint.tokenUrl,
        resource: CERTFLEET_AUDIENCE,
        client_id: "courier",
      },
      "build.example.com",
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "build.example.com");
    const query = endpoint.requests[0]!.url.searchParams;
    expect([query.get("resource"), query.get("client_id")]).toEqual([CERTFLEET_AUDIENCE, "courier"]);
  });

  it("azure_jwt: the federated token from AZURE_FEDERATED_TOKEN_FILE exchanged at the authority, UUID in api.uuid", async () => {
    const objectId = "0f0e0d0c-0b0a-4909-8807-060504030201";
    const federated = await k8s.sign({
      sub: "system:serviceaccount:web:agent",
      aud: "api://AzureADTokenExchange",
    });
    const authority = await startEntraTokenEndpoint({
      checkAssertion: async (assertion) => assertion === federated,
      mint: ({ tenant, audience }) =>
        entra.sign({ sub: objectId, oid: objectId, tid: tenant, aud: audience }),
    });
    loopbacks.push(authority);
    const identity = await server.createIdentity({
      name: "aks-web",
      method: "azure",
      binding: { tenantId: TENANT, objectId },
      grants: ["aks.example.com"],
    });
    const tokenFile = join(root, "azure-identity-token");
    await writeFile(tokenFile, federated);
    const { dir, result } = await syncWith(
      {
        method: "azure_jwt",
        tenant_id: TENANT,
        client_id: "11111111-2222-4333-8444-555555555555",
        resource: CERTFLEET_AUDIENCE,
        authority_host: authority.authorityHost,
      },
      "aks.example.com",
      { apiUuid: identity.id, env: { AZURE_FEDERATED_TOKEN_FILE: tokenFile } },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "aks.example.com");
    expect(authority.requests).toHaveLength(1);
    expect(new URLSearchParams(authority.requests[0]!.body).get("scope")).toBe(
      `${CERTFLEET_AUDIENCE}/.default`,
    );
  });

  it("azure_jwt: managed identity from the instance metadata endpoint when there is no token file", async () => {
    const objectId = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    const imds = await startAzureImds(({ resource }) =>
      entra.sign({ sub: objectId, oid: objectId, tid: TENANT, aud: resource }),
    );
    loopbacks.push(imds);
    const identity = await server.createIdentity({
      name: "vm-17",
      method: "azure",
      binding: { tenantId: TENANT, objectId },
      grants: ["vm-17.example.com"],
    });
    const { dir, result } = await syncWith(
      {
        method: "azure_jwt",
        tenant_id: TENANT,
        client_id: "mi-client-17",
        resource: CERTFLEET_AUDIENCE,
        imds_endpoint: imds.tokenUrl,
      },
      "vm-17.example.com",
      { apiUuid: identity.id },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "vm-17.example.com");
    expect(imds.requests[0]!.headers.metadata).toBe("true");
    expect(imds.requests[0]!.url.searchParams.get("client_id")).toBe("mi-client-17");
  });

  describe("azure_arc (HIMDS challenge)", () => {
    let himds: Himds;
    let tokenDir: string;
    const objectId = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    let identityId: string;
    beforeAll(async () => {
      tokenDir = join(root, "azcmagent-tokens");
      await mkdir(tokenDir);
      himds = await startHimds({
        tokenDir,
        mint: ({ resource }) => entra.sign({ sub: objectId, oid: objectId, tid: TENANT, aud: resource }),
      });
      loopbacks.push(himds);
      identityId = (
        await server.createIdentity({
          name: "arc-01",
          method: "azure",
          binding: { tenantId: TENANT, objectId },
          grants: ["arc-01.example.com"],
        })
      ).id;
    });
    const arcAuth = () => ({
      method: "azure_arc",
      uuid: identityId,
      himds_port: Number(new URL(himds.origin).port),
      token_dir: tokenDir,
      resource: CERTFLEET_AUDIENCE,
    });

    it("401 with the challenge file, then Basic <file contents>, then a token the server accepts", async () => {
      const { dir, result } = await syncWith(arcAuth(), "arc-01.example.com");
      expect(result.code, result.stderr).toBe(0);
      await expectInstalled(dir, "arc-01.example.com");
      expect(himds.requests.map((r) => [r.headers.metadata, r.headers.authorization === undefined])).toEqual([
        ["true", true],
        ["true", false],
      ]);
    });

    it("a listener naming a file outside the token directory gets nothing: exit 3, no second request", async () => {
      const before = himds.requests.length;
      const secretFile = join(root, "not-a-token.key");
      await writeFile(secretFile, "do-not-send");
      himds.setChallengePath(secretFile);
      try {
        const { result } = await syncWith(arcAuth(), "arc-01.example.com");
        expect(result.code).toBe(3);
        expect(JSON.parse(result.stdout).certificates[0].error.code).toBe("himds_challenge_path_refused");
        expect(himds.requests.slice(before).map((r) => r.headers.authorization)).toEqual([undefined]);
      } finally {
        himds.setChallengePath(undefined);
        await rm(secretFile, { force: true });
      }
    });
  });

  it("aws_oidc: the web identity token from AWS_WEB_IDENTITY_TOKEN_FILE, role ARN and region alongside", async () => {
    const roleArn = "arn:aws:iam::123456789012:role/CertfleetAgent";
    const identity = await server.createIdentity({
      name: "eks-agent",
      method: "aws",
      binding: { issuer: aws.issuerUrl, roleArn },
      grants: ["eks.example.com"],
    });
    const tokenFile = join(root, "aws-token");
    await writeFile(tokenFile, await aws.sign({ sub: roleArn, aud: "certfleet" }));
    const { dir, result } = await syncWith(
      { method: "aws_oidc", role_arn: roleArn, region: "ap-southeast-2" },
      "eks.example.com",
      { apiUuid: identity.id, env: { AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile } },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "eks.example.com");
  });

  it("gcp: an identity token for the audience from the metadata server (Metadata-Flavor: Google)", async () => {
    const metadata = await startGcpMetadata(({ audience }) =>
      gcp.sign({
        sub: "104729384756",
        aud: audience,
        email: "agent@proj.iam.gserviceaccount.com",
        email_verified: true,
      }),
    );
    loopbacks.push(metadata);
    const identity = await server.createIdentity({
      name: "gce-agent",
      method: "gcp",
      binding: { issuer: gcp.issuerUrl, subject: "104729384756" },
      grants: ["gce.example.com"],
    });
    const { dir, result } = await syncWith(
      { method: "gcp", audience: "https://certfleet.example.com", metadata_url: metadata.metadataUrl },
      "gce.example.com",
      { apiUuid: identity.id },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "gce.example.com");
    expect(metadata.requests[0]!.url.searchParams.get("format")).toBe("full");
  });

  it("kubernetes: the projected service-account token file", async () => {
    const identity = await server.createIdentity({
      name: "k8s-ingress",
      method: "kubernetes",
      binding: { issuer: k8s.issuerUrl, namespace: "ingress", serviceAccount: "certfleet-agent" },
      grants: ["ingress.example.com"],
    });
    const tokenFile = join(root, "sa-token");
    await writeFile(
      tokenFile,
      await k8s.sign({ sub: "system:serviceaccount:ingress:certfleet-agent", aud: "certfleet" }),
    );
    const { dir, result } = await syncWith(
      { method: "kubernetes", token_file: tokenFile },
      "ingress.example.com",
      {
        apiUuid: identity.id,
      },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectInstalled(dir, "ingress.example.com");
  });
});
