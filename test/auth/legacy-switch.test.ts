import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientCredentials, createClientSecretAuthenticator } from "../../src/auth/client-secret.js";
import {
  createLegacySwitch,
  LEGACY_SETTING_KEY,
  parseLegacySettings,
  SETTINGS_NAMESPACE,
  writeLegacySettings,
} from "../../src/auth/legacy-switch.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { Storage } from "../../src/storage/storage.js";
import { authRequest, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

describe("legacy-method switch", () => {
  let storage: Storage;
  beforeAll(async () => {
    storage = await openStorage();
  });
  afterAll(() => storage.close());

  it("parses the stored setting and fails closed on garbage", () => {
    expect(parseLegacySettings(undefined)).toEqual({ client_secret: true, certificate: true });
    expect(parseLegacySettings("false")).toEqual({ client_secret: false, certificate: false });
    expect(parseLegacySettings('{"certificate":false}')).toEqual({ client_secret: true, certificate: false });
    expect(parseLegacySettings('{"certificate":"no"}')).toBeUndefined();
    expect(parseLegacySettings("{oops")).toBeUndefined();
  });

  it("disabling client secrets in storage rejects the next authentication, without a restart", async () => {
    const clock = createManualClock(new Date("2026-03-01T00:00:00Z"));
    const legacySwitch = createLegacySwitch({ store: storage.kv, clock, logger: silentLogger() });
    const authenticator = createClientSecretAuthenticator({
      store: storage.identities,
      legacySwitch,
      logger: silentLogger(),
    });
    const credentials = await createClientCredentials({ params: { N: 1024, r: 8, p: 1 } });
    await createIdentity(storage, {
      method: "client_secret",
      binding: { clientId: credentials.clientId },
      grants: ["a.test"],
      secretHash: credentials.secretHash,
    });
    const request = authRequest({
      authorization:
        "Basic " + Buffer.from(`${credentials.clientId}:${credentials.clientSecret}`).toString("base64"),
    });

    expect(await authenticator.authenticate(request, signal)).toBeDefined();

    await writeLegacySettings(storage.kv, { client_secret: false }, signal);
    clock.advance(1000); // the switch caches a reading for at most one second
    await expectAuthFailure(authenticator.authenticate(request, signal), "legacy_method_disabled");
    expect((await legacySwitch.read(signal)).certificate).toBe(true);

    await writeLegacySettings(storage.kv, true, signal);
    clock.advance(1000);
    expect(await authenticator.authenticate(request, signal)).toBeDefined();

    await storage.kv.putValue(SETTINGS_NAMESPACE, LEGACY_SETTING_KEY, "not json");
    clock.advance(1000);
    await expectAuthFailure(authenticator.authenticate(request, signal), "legacy_method_disabled");
    await storage.kv.deleteValue(SETTINGS_NAMESPACE, LEGACY_SETTING_KEY);
  });
});
