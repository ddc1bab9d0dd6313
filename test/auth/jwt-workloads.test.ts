import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtAuthenticator, type JwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { Storage } from "../../src/storage/storage.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { authRequest, bearer, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

/**
 * Workload identities: loopback issuers speaking the documented discovery/JWKS protocol (and a SPIFFE
 * bundle endpoint / bundle file), tokens shaped like each platform's, identity records bound on the
 * platform's claims. All issuers are trusted by one authenticator, as in a real deployment.
 */
describe("workload identity tokens", () => {
  const tenant = randomUUID();
  const audience = "api://certfleet";
  let storage: Storage;
  let dir: string;
  let azure: JwksIssuer,
    kubernetes: JwksIssuer,
    aws: JwksIssuer,
    gcp: JwksIssuer,
    spiffeFile: JwksIssuer,
    spiffeEndpoint: JwksIssuer,
    idp: JwksIssuer;
  let authenticator: JwtAuthenticator;

  beforeAll(async () => {
    storage = await openStorage();
    dir = await mkdtemp(join(tmpdir(), "certfleet-spiffe-"));
    [azure, kubernetes, aws, gcp, spiffeFile, spiffeEndpoint, idp] = await Promise.all([
      startJwksIssuer({ path: `/${tenant}/v2.0`, algs: ["RS256"] }),
      startJwksIssuer({ algs: ["RS256"] }),
      startJwksIssuer({ algs: ["RS256"] }),
      startJwksIssuer({ algs: ["RS256"] }),
      startJwksIssuer({ algs: ["ES256"] }),
      startJwksIssuer({ algs: ["ES256"] }),
      startJwksIssuer({ algs: ["EdDSA"] }),
    ]);
    const bundleFile = join(dir, "bundle.json");
    await writeFile(
      bundleFile,
      JSON.stringify({ spiffe_sequence: 3, keys: spiffeFile.publicJwks("jwt-svid").keys }),
    );
    authenticator = createJwtAuthenticator({
      issuers: [
        { issuerUrl: azure.issuerUrl, audience, kind: "azure" },
        { issuerUrl: kubernetes.issuerUrl, audience, kind: "kubernetes" },
        { issuerUrl: aws.issuerUrl, audience: "sts.amazonaws.com", kind: "aws" },
        { issuerUrl: gcp.issuerUrl, audience, kind: "gcp" },
        { kind: "spiffe", trustDomain: "file.example.org", bundleFile, audience },
        {
          kind: "spiffe",
          trustDomain: "endpoint.example.org",
          bundleEndpointUrl: spiffeEndpoint.bundleUrl,
          audience,
        },
        { issuerUrl: idp.issuerUrl, audience, domainsClaim: "certfleet_domains" },
      ],
      fetch,
      clock: createManualClock(new Date()),
      logger: silentLogger(),
      store: storage.identities,
    });
  });
  afterAll(async () => {
    await Promise.all([azure, kubernetes, aws, gcp, spiffeFile, spiffeEndpoint, idp].map((i) => i?.close()));
    await storage?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("Azure / Entra ID (tid + oid)", () => {
    const oid = randomUUID();
    it("binds the record on tenant and object id", async () => {
      const record = await createIdentity(storage, {
        method: "azure",
        binding: { tenantId: tenant, objectId: oid },
        grants: ["vm1.example.com"],
      });
      const token = await azure.sign({
        sub: randomUUID(),
        aud: audience,
        tid: tenant,
        oid,
        xms_mirid: "/subscriptions/x",
      });
      expect(await authenticator.authenticate(bearer(token), signal)).toEqual({
        id: record.id,
        name: record.name,
        method: "azure",
        grants: ["vm1.example.com"],
        admin: false,
      });
      // The agent's UUID header must name the same record.
      const mismatched = authRequest({
        authorization: `Bearer ${token}`,
        "x-certfleet-identity": randomUUID(),
      });
      await expectAuthFailure(authenticator.authenticate(mismatched, signal), "identity_mismatch");
      const matching = authRequest({ authorization: `Bearer ${token}`, "x-certfleet-identity": record.id });
      expect((await authenticator.authenticate(matching, signal))?.id).toBe(record.id);
    });

    it("gives a valid token with no record no grants, and refuses foreign tenants and disabled records", async () => {
      const stranger = await authenticator.authenticate(
        bearer(await azure.sign({ sub: "s", aud: audience, tid: tenant, oid: randomUUID() })),
        signal,
      );
      expect(stranger).toMatchObject({ method: "azure", grants: [] });
      await expectAuthFailure(
        authenticator.authenticate(
          bearer(await azure.sign({ sub: "s", aud: audience, tid: randomUUID(), oid })),
          signal,
        ),
        "azure_tenant_mismatch",
      );
      const disabledOid = randomUUID();
      await createIdentity(storage, {
        method: "azure",
        binding: { tenantId: tenant, objectId: disabledOid },
        grants: ["x.test"],
        enabled: false,
      });
      await expectAuthFailure(
        authenticator.authenticate(
          bearer(await azure.sign({ sub: "s", aud: audience, tid: tenant, oid: disabledOid })),
          signal,
        ),
        "identity_disabled",
      );
    });
  });

  it("Kubernetes service-account tokens bind on namespace and name", async () => {
    const record = await createIdentity(storage, {
      method: "kubernetes",
      binding: { issuer: kubernetes.issuerUrl, namespace: "ingress", serviceAccount: "traefik" },
      grants: [".ingress.example.com"],
    });
    const token = await kubernetes.sign({
      sub: "system:serviceaccount:ingress:traefik",
      aud: [audience, "https://kubernetes.default.svc"],
    });
    expect(await authenticator.authenticate(bearer(token), signal)).toMatchObject({
      id: record.id,
      method: "kubernetes",
    });
    const other = await kubernetes.sign({ sub: "system:serviceaccount:ingress:nginx", aud: audience });
    expect((await authenticator.authenticate(bearer(other), signal))?.grants).toEqual([]);
    await expectAuthFailure(
      authenticator.authenticate(bearer(await kubernetes.sign({ sub: "admin", aud: audience })), signal),
      "kubernetes_sub_invalid",
    );
  });

  it("AWS web-identity tokens bind on the role ARN (assumed-role sessions map to their role)", async () => {
    const record = await createIdentity(storage, {
      method: "aws",
      binding: { issuer: aws.issuerUrl, roleArn: "arn:aws:iam::123456789012:role/CertfleetAgent" },
      grants: ["api.example.com"],
    });
    const assumed = await aws.sign({
      sub: "arn:aws:sts::123456789012:assumed-role/CertfleetAgent/i-0abc",
      aud: "sts.amazonaws.com",
    });
    expect(await authenticator.authenticate(bearer(assumed), signal)).toMatchObject({
      id: record.id,
      method: "aws",
    });
    const otherAccount = await aws.sign({
      sub: "arn:aws:iam::999999999999:role/CertfleetAgent",
      aud: "sts.amazonaws.com",
    });
    expect((await authenticator.authenticate(bearer(otherAccount), signal))?.grants).toEqual([]);
    await expectAuthFailure(
      authenticator.authenticate(bearer(await aws.sign({ sub: "i-0abc", aud: "sts.amazonaws.com" })), signal),
      "aws_sub_not_role_arn",
    );
  });

  it("GCP identity tokens bind on sub, or on a verified service-account email", async () => {
    const bySub = await createIdentity(storage, {
      method: "gcp",
      binding: { issuer: gcp.issuerUrl, subject: "1234567890" },
      grants: ["a.example.com"],
    });
    const byEmail = await createIdentity(storage, {
      method: "gcp",
      binding: { issuer: gcp.issuerUrl, email: "agent@proj.iam.gserviceaccount.com" },
      grants: ["b.example.com"],
    });
    expect(
      (await authenticator.authenticate(bearer(await gcp.sign({ sub: "1234567890", aud: audience })), signal))
        ?.id,
    ).toBe(bySub.id);
    const emailToken = await gcp.sign({
      sub: "555",
      aud: audience,
      email: "agent@proj.iam.gserviceaccount.com",
      email_verified: true,
    });
    expect((await authenticator.authenticate(bearer(emailToken), signal))?.id).toBe(byEmail.id);
    const unverified = await gcp.sign({
      sub: "555",
      aud: audience,
      email: "agent@proj.iam.gserviceaccount.com",
      email_verified: false,
    });
    expect((await authenticator.authenticate(bearer(unverified), signal))?.id).not.toBe(byEmail.id);
  });

  describe("SPIFFE JWT-SVIDs", () => {
    it("verifies against a trust bundle file", async () => {
      const spiffeId = "spiffe://file.example.org/ns/prod/sa/agent";
      const record = await createIdentity(storage, {
        method: "spiffe",
        binding: { spiffeId },
        grants: ["svc.example.com"],
      });
      const svid = await spiffeFile.sign({ iss: undefined, iat: undefined, sub: spiffeId, aud: audience });
      expect(await authenticator.authenticate(bearer(svid), signal)).toMatchObject({
        id: record.id,
        method: "spiffe",
      });
    });

    it("verifies against a SPIFFE bundle endpoint, using only JWT authorities", async () => {
      const spiffeId = "spiffe://endpoint.example.org/agent";
      const record = await createIdentity(storage, {
        method: "spiffe",
        binding: { spiffeId },
        grants: ["svc2.example.com"],
      });
      const svid = await spiffeEndpoint.sign({ iss: undefined, sub: spiffeId, aud: audience });
      expect(await authenticator.authenticate(bearer(svid), signal)).toMatchObject({
        id: record.id,
        method: "spiffe",
      });
      expect(spiffeEndpoint.hits.bundle).toBeGreaterThan(0);
      // The bundle's x509-svid entry is not a JWT authority.
      const viaX509Authority = await spiffeEndpoint.sign(
        { iss: undefined, sub: spiffeId, aud: audience },
        { header: { kid: "x509-authority" } },
      );
      await expectAuthFailure(
        authenticator.authenticate(bearer(viaX509Authority), signal),
        "jwt_key_unknown",
      );
    });

    it("refuses SVIDs from an unconfigured trust domain, or signed by another domain's keys", async () => {
      await expectAuthFailure(
        authenticator.authenticate(
          bearer(
            await spiffeFile.sign({ iss: undefined, sub: "spiffe://evil.example.org/agent", aud: audience }),
          ),
          signal,
        ),
        "jwt_issuer_untrusted",
      );
      // Signed with file.example.org's key but claiming endpoint.example.org.
      const crossed = await spiffeFile.sign(
        { iss: undefined, sub: "spiffe://endpoint.example.org/agent", aud: audience },
        { header: { kid: "key-1-es256" } },
      );
      await expectAuthFailure(authenticator.authenticate(bearer(crossed), signal), "jwt_signature_invalid");
    });
  });

  it("takes grants from a configured domains claim", async () => {
    const token = await idp.sign({
      sub: "m2m-client",
      aud: audience,
      certfleet_domains: ["one.example.com", "*.two.example.com"],
    });
    expect(await authenticator.authenticate(bearer(token), signal)).toMatchObject({
      id: `jwt:${idp.issuerUrl}#m2m-client`,
      grants: ["one.example.com", "*.two.example.com"],
      admin: false,
    });
    const spaced = await idp.sign({
      sub: "m2m-client",
      aud: audience,
      certfleet_domains: "a.example.com b.example.com",
    });
    expect((await authenticator.authenticate(bearer(spaced), signal))?.grants).toEqual([
      "a.example.com",
      "b.example.com",
    ]);
  });
});
