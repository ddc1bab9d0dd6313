import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { opensslVerify, sanDnsNames } from "../harness/pki.js";
import { freePort } from "../harness/pebble.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { runCaddy, runCertbot, runLego } from "./real-clients.js";

/** lego, certbot and Caddy obtain certificates in an `eab` profile, signed by the embedded CA. */
let server: AcmeTestServer;

beforeAll(async () => {
  server = await startAcmeTestServer({ profiles: [{ name: "default", mode: "eab" }] });
});
afterAll(async () => server?.stop());

function leafAndChain(pem: string): { leaf: string; chain: string } {
  const end = pem.indexOf("-----END CERTIFICATE-----") + "-----END CERTIFICATE-----".length;
  return { leaf: pem.slice(0, end) + "\n", chain: pem.slice(end).trim() + "\n" };
}

describe("real ACME clients, eab mode, embedded CA", () => {
  test("lego", async () => {
    const eab = await server.acme.eab.create(["*.lego.example.com", "lego.example.com"]);
    const res = await runLego({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domains: ["lego.example.com", "*.lego.example.com"],
      eab,
      solver: ["--http", "--http.port", `127.0.0.1:${await freePort()}`],
    });
    expect(res.code, res.output).toBe(0);
    const { leaf, chain } = leafAndChain(await res.certPem());
    expect(sanDnsNames(leaf)).toEqual(["*.lego.example.com", "lego.example.com"]);
    await opensslVerify(server.caPem, chain, leaf);

    // a name outside the grants: lego fails with the problem type
    const refused = await runLego({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domains: ["other.example.net"],
      eab,
      solver: ["--http", "--http.port", `127.0.0.1:${await freePort()}`],
      path: res.path,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("urn:ietf:params:acme:error:rejectedIdentifier");
  });

  test("certbot", async () => {
    const eab = await server.acme.eab.create(["certbot.example.com"]);
    const res = await runCertbot({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domains: ["certbot.example.com"],
      eab,
      httpPort: await freePort(),
    });
    expect(res.code, res.output + (await res.log()).slice(-3000)).toBe(0);
    const leaf = await res.livePem("cert.pem");
    expect(sanDnsNames(leaf)).toEqual(["certbot.example.com"]);
    await opensslVerify(server.caPem, await res.livePem("chain.pem"), leaf);
  });

  test("caddy", async () => {
    const eab = await server.acme.eab.create(["caddy.example.com"]);
    const res = await runCaddy({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domain: "caddy.example.com",
      eab,
      httpPort: await freePort(),
      httpsPort: await freePort(),
    });
    expect(res.obtained, res.output.slice(-4000)).toBe(true);
    const { leaf, chain } = leafAndChain(await res.certPem());
    expect(sanDnsNames(leaf)).toEqual(["caddy.example.com"]);
    await opensslVerify(server.caPem, chain, leaf);
  });

  test("caddy: two sites, one EAB key, registering at once; both obtained without a refusal", async () => {
    const eab = await server.acme.eab.create(["site-a.example.com", "site-b.example.com"]);
    const res = await runCaddy({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domain: "site-a.example.com",
      moreDomains: ["site-b.example.com"],
      eab,
      httpPort: await freePort(),
      httpsPort: await freePort(),
      timeoutMs: 50_000,
    });
    // runCaddy stops at the first error-level tls.obtain line (a refused registration is one: Caddy
    // would then wait 60 s), so `obtained` means both sites got theirs on the first attempt
    expect(res.obtained, res.output.slice(-4000)).toBe(true);
    expect(res.output.split('"msg":"certificate obtained successfully"').length - 1).toBe(2);
    expect(res.output).not.toContain("already bound");
    // Caddy did register twice (one fresh key per site): the second is the same client's rebind
    const created = (
      await server.storage.audit.listAudit({ type: "acme.account.create", limit: 100 })
    ).filter((e) => e.data.eabKid === eab.kid);
    expect(created).toHaveLength(2);
    expect(created.filter((e) => e.data.rebindOf !== undefined)).toHaveLength(1);
    expect(sanDnsNames(leafAndChain(await res.certPem()).leaf)).toEqual(["site-a.example.com"]);
  });
});
