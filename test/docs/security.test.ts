import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";

/** docs/security.md names limits by their config keys; each must exist in docs/config.md. */
describe("docs/security.md", () => {
  it("names only settings that exist in the configuration reference", async () => {
    const security = await readFile(new URL("../../docs/security.md", import.meta.url), "utf8");
    const reference = await readFile(new URL("../../docs/config.md", import.meta.url), "utf8");
    const documented = new Set([...reference.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const named = [
      ...new Set(
        [
          ...security.matchAll(/`((?:server|auth|acmeServer|database|certificates|dns)\.[A-Za-z0-9.[\]]+)`/g),
        ].map((m) => m[1]!),
      ),
    ];
    expect(named.length).toBeGreaterThanOrEqual(12);
    expect(named.filter((key) => !documented.has(key))).toEqual([]);
  });

  it("covers each limit of the threat model", async () => {
    const security = await readFile(new URL("../../docs/security.md", import.meta.url), "utf8");
    for (const key of [
      "auth.failureLimit.maxFailures",
      "acmeServer.profiles[].ordersPerHour",
      "server.bodyLimit",
      "server.requestTimeout",
      "acmeServer.profiles[].eabRebindWindow",
      "acmeServer.profiles[].allowPrivateAddresses",
      "database.encryptionKeyFile",
    ])
      expect(security).toContain("`" + key + "`");
  });
});
