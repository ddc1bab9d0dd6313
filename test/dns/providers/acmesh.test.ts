import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamError } from "../../../src/core/errors.js";
import {
  acmeShConfigSchema,
  createAcmeShProvider,
} from "../../../src/dns/providers/acmesh/acmesh-provider.js";
import { startAcmeShTestApi } from "../../harness/dns-apis/acmesh-test-api.js";
import type { LoopbackApi } from "../../harness/dns-apis/loopback-api.js";
import { runDnsProviderConformance } from "../conformance.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.com";
const TOKEN = "acmesh-test-token";

/**
 * A dnsapi script written the way acme.sh's are: credentials via _readaccountconf_mutable, HTTP via
 * _post/_get with headers in _H1, parsing with _egrep_o/_head_n/_contains, arithmetic with _math.
 */
const DNS_TEST_SH = `#!/usr/bin/env sh
# shellcheck disable=SC2034
dns_test_info='certfleet test provider'

dns_test_add() {
  fulldomain="$(printf '%s' "$1" | _lower_case)"
  txtvalue="$2"
  TEST_Token="\${TEST_Token:-$(_readaccountconf_mutable TEST_Token)}"
  TEST_Api="\${TEST_Api:-$(_readaccountconf_mutable TEST_Api)}"
  if [ -z "$TEST_Token" ] || [ -z "$TEST_Api" ]; then
    _err "You did not specify TEST_Token and TEST_Api."
    return 1
  fi
  _saveaccountconf_mutable TEST_Token "$TEST_Token"
  _secure_debug TEST_Token "$TEST_Token"
  _info "Adding record" "$fulldomain"
  export _H1="Authorization: Bearer $TEST_Token"
  response="$(_post "{\\"name\\":\\"$fulldomain\\",\\"value\\":\\"$txtvalue\\"}" "$TEST_Api/records" "" "POST" "application/json")"
  if _contains "$response" '"ok":true'; then
    _id="$(printf '%s' "$response" | _egrep_o '"id":"[^"]*"' | _head_n 1 | cut -d : -f 2 | tr -d '"')"
    _info "Added, id" "$_id"
    return 0
  fi
  _err "Add txt record error: $response"
  return 1
}

dns_test_rm() {
  fulldomain="$(printf '%s' "$1" | _lower_case)"
  txtvalue="$2"
  TEST_Token="\${TEST_Token:-$(_readaccountconf_mutable TEST_Token)}"
  TEST_Api="\${TEST_Api:-$(_readaccountconf_mutable TEST_Api)}"
  export _H1="Authorization: Bearer $TEST_Token"
  response="$(_get "$TEST_Api/records?name=$(printf '%s' "$fulldomain" | _url_encode)")"
  if ! _contains "$response" '"ok":true'; then
    _err "List error: $response"
    return 1
  fi
  removed=0
  for _rec in $(printf '%s' "$response" | _normalizeJson | _egrep_o '\\{"id":"[^"]*","name":"[^"]*","value":"[^"]*"\\}'); do
    if _contains "$_rec" "\\"value\\":\\"$txtvalue\\""; then
      _id="$(printf '%s' "$_rec" | _egrep_o '"id":"[^"]*"' | cut -d : -f 2 | tr -d '"')"
      _post "" "$TEST_Api/records/$_id" "" "DELETE" >/dev/null || return 1
      removed="$(_math "$removed" + 1)"
    fi
  done
  _debug removed "$removed"
  return 0
}
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "certfleet-acmesh-"));
  writeFileSync(join(dir, "dns_test.sh"), DNS_TEST_SH);
  writeFileSync(join(dir, "dns_noadd.sh"), "dns_noadd_rm() { return 0; }\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function provider(api: LoopbackApi, extra: Record<string, unknown> = {}) {
  return createAcmeShProvider(
    acmeShConfigSchema.parse({
      scriptsDir: dir,
      name: "test",
      env: { TEST_Token: TOKEN, TEST_Api: api.url },
      ...extra,
    }),
    testDeps(),
  );
}

runDnsProviderConformance("acmesh", async () => {
  const api = await startAcmeShTestApi({ token: TOKEN });
  return {
    provider: provider(api),
    zone: ZONE,
    lookup: async (n) => api.store.get(n),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

describe("acmesh bridge specifics", () => {
  let api: LoopbackApi;
  beforeAll(async () => {
    api = await startAcmeShTestApi({ token: TOKEN });
  });
  afterAll(() => api.close());

  it("calls dns_<name>_add with the fqdn (no trailing dot) and the value, credentials from env", async () => {
    const r = txt(ZONE);
    await provider(api).appendTxt(r, AbortSignal.timeout(10_000));
    const post = api.requests.at(-1)!;
    expect(JSON.parse(post.body)).toEqual({ name: r.name, value: r.value });
    expect(post.headers.authorization).toBe(`Bearer ${TOKEN}`);
    await provider(api).deleteTxt(r);
    expect(api.requests.at(-1)!.method).toBe("DELETE");
    expect(api.store.get(r.name)).toEqual([]);
  });

  it("a failing script is an UpstreamError naming the zone, with the script's output kept internal", async () => {
    const p = provider(api, { env: { TEST_Token: "wrong", TEST_Api: api.url } });
    const error = (await p
      .appendTxt(txt(ZONE), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.code).toBe("dns_provider_error");
    expect(error.message).toContain(ZONE);
    expect(error.message).not.toContain("wrong");
    expect(error.internal).toContain("Add txt record error");
    expect(error.details).toMatchObject({ provider: "acmesh", script: "dns_test", exitCode: 1 });
  });

  it("certfleet's own environment does not reach the script", async () => {
    process.env.CERTFLEET_SECRET_PROBE = "leak";
    writeFileSync(
      join(dir, "dns_probe.sh"),
      'dns_probe_add() { [ -z "$CERTFLEET_SECRET_PROBE" ] || { _err "leaked"; return 1; }; }\n',
    );
    try {
      await createAcmeShProvider(
        acmeShConfigSchema.parse({ scriptsDir: dir, name: "probe" }),
        testDeps(),
      ).appendTxt(txt(ZONE), AbortSignal.timeout(10_000));
    } finally {
      delete process.env.CERTFLEET_SECRET_PROBE;
    }
  });

  it("missing script or missing add function is a non-retryable config error; missing rm is fine", async () => {
    const missing = createAcmeShProvider(
      acmeShConfigSchema.parse({ scriptsDir: dir, name: "nosuch" }),
      testDeps(),
    );
    await expect(missing.appendTxt(txt(ZONE), AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_provider_config",
      retryable: false,
    });
    const noAdd = createAcmeShProvider(
      acmeShConfigSchema.parse({ scriptsDir: dir, name: "noadd" }),
      testDeps(),
    );
    await expect(noAdd.appendTxt(txt(ZONE), AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_provider_config",
    });
    writeFileSync(join(dir, "dns_normfn.sh"), "dns_normfn_add() { return 0; }\n");
    const noRm = createAcmeShProvider(
      acmeShConfigSchema.parse({ scriptsDir: dir, name: "normfn" }),
      testDeps(),
    );
    await expect(noRm.deleteTxt(txt(ZONE))).resolves.toBeUndefined();
  });

  it("a hanging script is killed at the timeout, and cancellation kills it too", async () => {
    writeFileSync(join(dir, "dns_hang.sh"), "dns_hang_add() { _sleep 30; }\n");
    const hang = createAcmeShProvider(
      acmeShConfigSchema.parse({ scriptsDir: dir, name: "hang", timeoutMs: 300 }),
      testDeps(),
    );
    await expect(hang.appendTxt(txt(ZONE), AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_provider_timeout",
    });
    const slow = createAcmeShProvider(
      acmeShConfigSchema.parse({ scriptsDir: dir, name: "hang" }),
      testDeps(),
    );
    const started = Date.now();
    await expect(slow.appendTxt(txt(ZONE), AbortSignal.timeout(300))).rejects.toMatchObject({
      code: "aborted",
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("config: name must be a plain script name", () => {
    expect(acmeShConfigSchema.safeParse({ scriptsDir: dir, name: "../evil" }).success).toBe(false);
    expect(acmeShConfigSchema.safeParse({ scriptsDir: dir, name: "cf; rm -rf /" }).success).toBe(false);
  });

  it("no bad requests were sent", () => api.assertClean());
});
