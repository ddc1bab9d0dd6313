import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamError } from "../../src/core/errors.js";
import { createExecProvider, execConfigSchema } from "../../src/dns/providers/exec/exec-provider.js";
import { runDnsProviderConformance } from "./conformance.js";

const ZONE = "exec.test";

/** lego's exec contract, backed by a flat file: "<fqdn.> <value>" per line, serialised with flock. */
const STORE_SCRIPT = `#!/bin/sh
set -eu
db="$(dirname "$0")/records.txt"
exec 9>"$db.lock"
flock 9
touch "$db"
case "$1" in
  present) printf '%s %s\\n' "$2" "$3" >> "$db" ;;
  cleanup) { grep -vxF -- "$2 $3" "$db" || true; } > "$db.tmp"; mv "$db.tmp" "$db" ;;
  *) echo "unknown verb $1" >&2; exit 2 ;;
esac
`;

async function scriptDir(script: string): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-exec-"));
  const path = join(dir, "hook.sh");
  await writeFile(path, script);
  await chmod(path, 0o755);
  return { dir, path };
}

runDnsProviderConformance("exec (file-backed script)", async () => {
  const { dir, path } = await scriptDir(STORE_SCRIPT);
  return {
    provider: createExecProvider(execConfigSchema.parse({ command: path })),
    zone: ZONE,
    async lookup(name) {
      const text = await readFile(join(dir, "records.txt"), "utf8").catch(() => "");
      return text
        .split("\n")
        .map((line) => line.split(" "))
        .filter(([fqdn]) => fqdn === `${name}.`)
        .map(([, value]) => value!);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe("exec provider failures and environment", () => {
  let dir: string;
  let path: string;
  const record = { zone: ZONE, name: `_acme-challenge.${ZONE}`, value: "v1", ttl: 60 };

  beforeAll(async () => {
    // Exits with the code in $EXIT_CODE, sleeps $SLEEP seconds, and reports what it saw.
    ({ dir, path } = await scriptDir(`#!/bin/sh
echo "args: $*" >&2
echo "leak: \${CERTFLEET_TEST_PARENT_SECRET:-none} token: \${DNS_TOKEN:-none}" >&2
sleep "\${SLEEP:-0}"
exit "\${EXIT_CODE:-0}"
`));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function provider(overrides: Record<string, unknown>) {
    return createExecProvider(execConfigSchema.parse({ command: path, ...overrides }));
  }

  it("a nonzero exit is dns_exec_failed with stderr (internal only), the verb and the fqdn with its trailing dot", async () => {
    const err = (await provider({ env: { EXIT_CODE: "3" } })
      .appendTxt(record, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.code).toBe("dns_exec_failed");
    expect(err.details).toMatchObject({ provider: "exec", zone: ZONE, verb: "present", exitCode: 3 });
    expect(String(err.internal)).toContain(`args: present _acme-challenge.${ZONE}. v1`);
    expect(err.message).not.toContain("args:");
  });

  it("cleanup failures surface too (the solver decides to log them)", async () => {
    const err = (await provider({ env: { EXIT_CODE: "1" } })
      .deleteTxt(record)
      .catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("dns_exec_failed");
    expect(err.details).toMatchObject({ verb: "cleanup" });
  });

  it("passes only configured environment variables", async () => {
    process.env.CERTFLEET_TEST_PARENT_SECRET = "parent-secret";
    try {
      const err = (await provider({ env: { EXIT_CODE: "1", DNS_TOKEN: "tok" } })
        .appendTxt(record, AbortSignal.timeout(10_000))
        .catch((e: unknown) => e)) as UpstreamError;
      expect(String(err.internal)).toContain("leak: none token: tok");

      const passed = (await provider({
        env: { EXIT_CODE: "1" },
        passEnv: ["PATH", "CERTFLEET_TEST_PARENT_SECRET"],
      })
        .appendTxt(record, AbortSignal.timeout(10_000))
        .catch((e: unknown) => e)) as UpstreamError;
      expect(String(passed.internal)).toContain("leak: parent-secret");
    } finally {
      delete process.env.CERTFLEET_TEST_PARENT_SECRET;
    }
  });

  it("a program that runs too long is killed and reported as dns_exec_failed", async () => {
    const started = Date.now();
    const err = (await provider({ env: { SLEEP: "5" }, timeoutMs: 200 })
      .appendTxt(record, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("dns_exec_failed");
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("aborting mid-run rejects with code aborted", async () => {
    const err = (await provider({ env: { SLEEP: "5" } })
      .appendTxt(record, AbortSignal.timeout(200))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("aborted");
  });

  it("a missing program is dns_exec_failed and not retryable", async () => {
    const err = (await createExecProvider(execConfigSchema.parse({ command: join(dir, "missing.sh") }))
      .appendTxt(record, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe("dns_exec_failed");
    expect(err.retryable).toBe(false);
  });
});
