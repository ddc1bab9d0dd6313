import { describe, expect, it } from "vitest";
import { createApiKeyAuthenticator, unrestrictedApiKeys } from "../../src/auth/api-key.js";
import { hashApiKey } from "../../src/auth/secrets.js";
import { silentLogger } from "../../src/core/logger.js";
import { authRequest, expectAuthFailure, expectCode, signal } from "./helpers.js";

const KEY_A = "key-a-0123456789abcdef0123456789";
const KEY_B = "key-b-0123456789abcdef0123456789";
const keys = [
  { name: "web", key: KEY_A, grants: ["*.web.example.com"] },
  { name: "ops", keyHash: hashApiKey(KEY_B), admin: true },
];
const apiKey = (key: string) => authRequest({ authorization: `APIKey ${key}` });

describe("API key authenticator", () => {
  const authenticator = createApiKeyAuthenticator({ keys, logger: silentLogger() });

  it("maps each key to its own principal and grants", async () => {
    expect(await authenticator.authenticate(apiKey(KEY_A), signal)).toEqual({
      id: "apikey:web",
      name: "web",
      method: "api_key",
      grants: ["*.web.example.com"],
      admin: false,
    });
    const ops = await authenticator.authenticate(authRequest({ authorization: `apikey ${KEY_B}` }), signal);
    expect(ops).toMatchObject({ id: "apikey:ops", grants: "all", admin: true });
  });

  it("ignores requests without an APIKey credential", async () => {
    expect(await authenticator.authenticate(authRequest({}), signal)).toBeUndefined();
    expect(
      await authenticator.authenticate(authRequest({ authorization: "Bearer abc" }), signal),
    ).toBeUndefined();
  });

  it("refuses unknown, empty and oversized keys", async () => {
    await expectAuthFailure(authenticator.authenticate(apiKey(KEY_A + "x"), signal), "api_key_unknown");
    await expectAuthFailure(
      authenticator.authenticate(authRequest({ authorization: "APIKey " }), signal),
      "api_key_malformed",
    );
    await expectAuthFailure(
      authenticator.authenticate(apiKey("k".repeat(5000)), signal),
      "api_key_malformed",
    );
  });

  it("lists the keys that may obtain every name", () => {
    expect(unrestrictedApiKeys(keys)).toEqual(["ops"]);
    expect(unrestrictedApiKeys([{ name: "star", key: KEY_A, grants: ["*"] }])).toEqual(["star"]);
  });

  it("refuses bad configuration", async () => {
    const build = (k: Parameters<typeof createApiKeyAuthenticator>[0]["keys"]) => async () =>
      createApiKeyAuthenticator({ keys: k, logger: silentLogger() });
    await expectCode(build([{ name: "x" }])(), "config_invalid");
    await expectCode(build([{ name: "x", keyHash: "sha256:xyz" }])(), "config_invalid");
    await expectCode(
      build([
        { name: "x", key: KEY_A },
        { name: "x", key: KEY_B },
      ])(),
      "config_invalid",
    );
    await expectCode(
      build([
        { name: "x", key: KEY_A },
        { name: "y", key: KEY_A },
      ])(),
      "config_invalid",
    );
  });
});
