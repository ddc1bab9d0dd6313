import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The systemd units under deploy/systemd, checked by systemd itself (`systemd-analyze verify`) and read
 * for the properties operations.md promises. `verify` also reports an ExecStart binary that does not
 * exist; the test copies point ExecStart at a stub that does, so any output left is about the units.
 */
const run = promisify(execFile);
const DIR = new URL("../../deploy/systemd/", import.meta.url).pathname;

/** `Key=value` lines of a unit, per section; repeated keys keep every value. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    expect(current, `key outside a section: ${line}`).toBeDefined();
    const key = line.slice(0, eq);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

describe("systemd units", () => {
  let work: string;
  let stub: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "certfleet-systemd-"));
    stub = join(work, "certfleet");
    await writeFile(stub, "#!/bin/sh\nexit 0\n");
    await chmod(stub, 0o755);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** Copy units (name in the copy → file in deploy/systemd) and drop-ins into a fresh unit dir; verify. */
  async function verify(units: Record<string, string>, dropIns: Record<string, string> = {}) {
    const dir = await mkdtemp(join(work, "units-"));
    for (const [name, file] of Object.entries({ ...units, ...dropIns })) {
      const text = (await readFile(join(DIR, file), "utf8")).replaceAll("/usr/bin/certfleet", stub);
      await mkdir(join(dir, name, ".."), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    const result = await run("systemd-analyze", ["verify", "--man=no", ...Object.keys(units)], {
      cwd: dir,
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
      timeout: 60_000,
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    return { code: "code" in result ? result.code : 0, output: (result.stdout + result.stderr).trim() };
  }

  it("systemd-analyze verify finds nothing to report in any unit, drop-in or template instance", async () => {
    expect(
      await verify(
        { "certfleet.service": "certfleet.service" },
        { "certfleet.service.d/http01.conf": "certfleet-http01.conf" },
      ),
    ).toEqual({ code: 0, output: "" });
    expect(await verify({ "certfleet-agent.service": "certfleet-agent.service" })).toEqual({
      code: 0,
      output: "",
    });
    expect(
      await verify({
        "certfleet-reload@nginx.path": "certfleet-reload@.path",
        "certfleet-reload@nginx.service": "certfleet-reload@.service",
        "certfleet-reload@.service": "certfleet-reload@.service",
      }),
    ).toEqual({ code: 0, output: "" });
  });

  it("verify would report an unknown key (the check above can fail)", async () => {
    const dir = await mkdtemp(join(work, "bad-"));
    await writeFile(
      join(dir, "certfleet.service"),
      (await readFile(join(DIR, "certfleet.service"), "utf8"))
        .replaceAll("/usr/bin/certfleet", stub)
        .replace("[Service]", "[Service]\nProtectSystemm=strict"),
    );
    const result = await run("systemd-analyze", ["verify", "--man=no", join(dir, "certfleet.service")], {
      timeout: 60_000,
    });
    expect(result.stderr).toMatch(/Unknown key 'ProtectSystemm'/);
  });

  it("the server unit: unprivileged, hardened, reloadable, stops after the 20 s drain", async () => {
    const unit = parseUnit(await readFile(join(DIR, "certfleet.service"), "utf8"));
    const service = unit.get("Service")!;
    const get = (k: string) => service.get(k)?.at(-1);
    expect(get("ExecStart")).toBe("/usr/bin/certfleet serve --config /etc/certfleet/certfleet.yaml");
    expect(get("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(get("DynamicUser")).toBe("yes");
    expect(get("StateDirectory")).toBe("certfleet");
    expect(service.get("Environment")).toContain("CERTFLEET_DATA_DIR=/var/lib/certfleet");
    for (const [k, v] of Object.entries({
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      PrivateDevices: "yes",
      RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
      CapabilityBoundingSet: "",
      AmbientCapabilities: "",
    }))
      expect(get(k), k).toBe(v);
    const stop = /^(\d+)s$/.exec(get("TimeoutStopSec")!);
    expect(Number(stop?.[1])).toBeGreaterThan(20);
    expect(unit.get("Install")!.get("WantedBy")).toEqual(["multi-user.target"]);

    // only the HTTP-01 drop-in grants a capability, and only the one to bind :80
    const dropIn = parseUnit(await readFile(join(DIR, "certfleet-http01.conf"), "utf8")).get("Service")!;
    expect(dropIn.get("AmbientCapabilities")).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(dropIn.get("CapabilityBoundingSet")).toEqual(["CAP_NET_BIND_SERVICE"]);
  });

  it("the agent unit: a system user, its state directory, writes only where certificates go", async () => {
    const service = parseUnit(await readFile(join(DIR, "certfleet-agent.service"), "utf8")).get("Service")!;
    const get = (k: string) => service.get(k)?.at(-1);
    expect(get("ExecStart")).toBe("/usr/bin/certfleet agent --config /etc/certfleet/agent.yaml");
    expect(get("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(get("User")).toBe("certfleet-agent");
    expect(get("StateDirectory")).toBe("certfleet-agent");
    expect(get("ProtectSystem")).toBe("strict");
    expect(get("ReadWritePaths")).toBe("/etc/certfleet/tls");
    expect(get("NoNewPrivileges")).toBe("yes");
    expect(get("CapabilityBoundingSet")).toBe("");
    expect(get("RestartPreventExitStatus")).toBe("2");
    // the user and the directory it writes exist before it starts
    expect(await readFile(join(DIR, "certfleet-agent.sysusers.conf"), "utf8")).toMatch(
      /^u certfleet-agent /m,
    );
    expect(await readFile(join(DIR, "certfleet-agent.tmpfiles.conf"), "utf8")).toMatch(
      /^d \/etc\/certfleet\/tls 0750 certfleet-agent certfleet-agent/m,
    );
  });
});
