import { describe, expect, it } from "vitest";
import {
  certificateBindingKeys,
  recordBindingKey,
  roleArnOf,
  tokenBindingKeys,
} from "../../src/auth/binding.js";
import { failureReason } from "../../src/auth/auth-failure.js";

const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const oid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

describe("binding keys", () => {
  it("derives the same key from a record's binding and from the token it should match", () => {
    const cases: [
      string,
      Record<string, string>,
      Parameters<typeof tokenBindingKeys>[0],
      Record<string, unknown>,
    ][] = [
      ["jwt", { issuer: "https://idp", subject: "abc" }, "oidc", { iss: "https://idp", sub: "abc" }],
      [
        "azure",
        { tenantId: tid.toUpperCase(), objectId: oid },
        "azure",
        { iss: `https://sts.windows.net/${tid}/`, tid, oid, sub: "x" },
      ],
      [
        "aws",
        { issuer: "https://oidc.eks", roleArn: "arn:aws:iam::123456789012:role/R" },
        "aws",
        { iss: "https://oidc.eks", sub: "arn:aws:sts::123456789012:assumed-role/R/s1" },
      ],
      [
        "gcp",
        { issuer: "https://accounts.google.com", subject: "42" },
        "gcp",
        { iss: "https://accounts.google.com", sub: "42" },
      ],
      [
        "kubernetes",
        { issuer: "https://k8s", namespace: "ns", serviceAccount: "sa" },
        "kubernetes",
        { iss: "https://k8s", sub: "system:serviceaccount:ns:sa" },
      ],
      ["spiffe", { spiffeId: "spiffe://example.org/a/b" }, "spiffe", { sub: "spiffe://example.org/a/b" }],
    ];
    for (const [method, binding, kind, claims] of cases) {
      expect(tokenBindingKeys(kind, claims), method).toContain(recordBindingKey(method, binding));
    }
  });

  it("keeps issuers apart: the same subject at another issuer is another key", () => {
    expect(tokenBindingKeys("oidc", { iss: "https://a", sub: "x" })).not.toEqual(
      tokenBindingKeys("oidc", { iss: "https://b", sub: "x" }),
    );
    expect(recordBindingKey("jwt", { issuer: "https://a", subject: "x" })).not.toBe(
      recordBindingKey("kubernetes", { issuer: "https://a", namespace: "x", serviceAccount: "x" }),
    );
  });

  it("binds certificates by fingerprint in either notation, URI, DNS name or CN", () => {
    const fp = "AB:".repeat(31) + "AB";
    const keys = certificateBindingKeys({
      fingerprint: "ab".repeat(32),
      commonNames: ["agent"],
      dnsNames: ["a.example.com"],
      uris: ["spiffe://x/y"],
    });
    const bindings: Record<string, string>[] = [
      { fingerprint: fp },
      { commonName: "agent" },
      { dnsName: "A.example.com" },
      { uri: "spiffe://x/y" },
    ];
    for (const binding of bindings) {
      expect(keys).toContain(recordBindingKey("certificate", binding));
    }
  });

  it("refuses incomplete or malformed bindings with binding_invalid", () => {
    for (const [method, binding] of [
      ["jwt", { issuer: "https://idp" }],
      ["azure", { tenantId: "not-a-guid", objectId: oid }],
      ["aws", { issuer: "https://x", roleArn: "arn:aws:iam::1:user/u" }],
      ["kubernetes", { issuer: "https://k", namespace: "NS!", serviceAccount: "sa" }],
      ["spiffe", { spiffeId: "https://example.org" }],
      ["client_secret", { clientId: "abc" }],
      ["certificate", { fingerprint: "1234" }],
      ["certificate", {}],
    ] as [string, Record<string, string>][]) {
      expect(() => recordBindingKey(method, binding), method).toThrow(
        expect.objectContaining({ code: "binding_invalid" }),
      );
    }
    expect(recordBindingKey("api_key", {})).toBeNull();
  });

  it("refuses tokens lacking the claims their kind binds on", () => {
    const reasonOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return failureReason(e);
      }
      return undefined;
    };
    expect(reasonOf(() => tokenBindingKeys("azure", { iss: "x", tid }))).toBe("jwt_binding_claim_missing");
    expect(reasonOf(() => tokenBindingKeys("spiffe", { sub: "not-spiffe" }))).toBe("spiffe_id_invalid");
    expect(roleArnOf("arn:aws:sts::123456789012:assumed-role/Role/session")).toBe(
      "arn:aws:iam::123456789012:role/Role",
    );
    expect(roleArnOf("arn:aws:iam::123456789012:user/bob")).toBeUndefined();
  });
});
