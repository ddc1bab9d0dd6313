import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";

/**
 * The kustomize base, overlays and examples under deploy/kubernetes, rendered by the real kustomize in
 * kubectl (no cluster needed) and checked object by object; the rendered configuration is then loaded
 * by certfleet's own config loader with the environment the Deployment would give the container.
 */
const run = promisify(execFile);
const ROOT = new URL("../../deploy/kubernetes/", import.meta.url).pathname;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

async function render(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run("kubectl", ["kustomize", join(ROOT, dir)], { timeout: 60_000 });
  return parseAllDocuments(stdout).map((d) => d.toJSON() as K8sObject);
}

const one = (objects: K8sObject[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

/** Every directory with a kustomization.yaml under overlays/ and examples/. */
async function renderable(): Promise<string[]> {
  const out: string[] = [];
  for (const group of ["overlays", "examples"])
    for (const name of await readdir(join(ROOT, group)))
      if (await stat(join(ROOT, group, name, "kustomization.yaml")).catch(() => undefined))
        out.push(`${group}/${name}`);
  return out;
}

/** Dummy values for every Secret reference, then `$(VAR)` expanded the way the kubelet does it. */
function containerEnv(container: any): Record<string, string> {
  const env: Record<string, string> = {};
  const secrets: Record<string, string> = {
    "certfleet-master-key/encryption-key": Buffer.alloc(32, 7).toString("base64"),
    "certfleet-admin/key-hash": "sha256:" + "ab".repeat(32),
    "certfleet-acme/email": "ops@example.com",
    "certfleet-database/url": "postgres://certfleet:pw@db.example:5432/certfleet",
    "certfleet-dns-cloudflare/api-token": "cf-token-value",
  };
  for (const e of container.env ?? []) {
    if (e.valueFrom?.secretKeyRef) {
      const ref = `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`;
      if (secrets[ref] !== undefined) env[e.name] = secrets[ref]!;
      else expect(e.valueFrom.secretKeyRef.optional, `secret ${ref} has no test value`).toBe(true);
    } else {
      env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
    }
  }
  return env;
}

describe("kustomize overlays", () => {
  let dirs: string[];
  let work: string;
  const rendered = new Map<string, K8sObject[]>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "certfleet-k8s-"));
    dirs = await renderable();
    for (const dir of dirs) rendered.set(dir, await render(dir));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("finds the overlays and examples", () => {
    expect(dirs).toEqual(
      expect.arrayContaining([
        "overlays/sqlite",
        "overlays/postgres",
        "examples/akash-cloudflare",
        "examples/akash-gcloud-staging",
      ]),
    );
  });

  it("every rendered Deployment runs the image non-root, read-only, without capabilities, with probes", () => {
    for (const [dir, objects] of rendered) {
      const deployment = one(objects, "Deployment");
      const pod = deployment.spec.template.spec;
      const [container] = pod.containers;
      expect(container.image, dir).toMatch(/^ghcr\.io\/certfleet\/certfleet:\d+\.\d+\.\d+$/);
      expect(container.args).toEqual(["serve", "--config", "/etc/certfleet/certfleet.yaml"]);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "https", scheme: "HTTPS" });
      expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "https", scheme: "HTTPS" });
      // the drain (20 s) fits in the grace period
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(20);
      // everything written goes to a volume: the data dir and /tmp
      const mounts = Object.fromEntries(container.volumeMounts.map((m: any) => [m.mountPath, m]));
      expect(Object.keys(mounts)).toEqual(expect.arrayContaining(["/data", "/tmp", "/etc/certfleet"]));
      expect(mounts["/etc/certfleet"].readOnly).toBe(true);
      // the config volume is the generated ConfigMap (its hashed name)
      const configMap = one(objects, "ConfigMap");
      const configVolume = pod.volumes.find((v: any) => v.name === "config");
      expect(configVolume.configMap.name).toBe(configMap.metadata.name);
      expect(configMap.metadata.name).toMatch(/^certfleet-config-[a-z0-9]+$/);
      // the master key comes from a Secret, never a literal
      const key = container.env.find((e: any) => e.name === "CERTFLEET_DATABASE__ENCRYPTION_KEY");
      expect(key.valueFrom.secretKeyRef).toEqual({ name: "certfleet-master-key", key: "encryption-key" });
      for (const e of container.env)
        if (/KEY|TOKEN|PASSWORD|URL|HASH/.test(e.name) && !e.name.endsWith("DNS_PROVIDER"))
          expect(e.value === undefined || e.value.includes("$("), `${dir}: ${e.name} is a literal`).toBe(
            true,
          );
      // a Service selects the pods
      const service = one(objects, "Service");
      expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
      expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
      expect(service.spec.ports).toEqual(
        expect.arrayContaining([
          { name: "https", port: 8443, targetPort: "https" },
          { name: "http01", port: 80, targetPort: "http01" },
        ]),
      );
    }
  });

  it("sqlite: one replica, recreated, its data on a PersistentVolumeClaim", () => {
    const objects = rendered.get("overlays/sqlite")!;
    const deployment = one(objects, "Deployment");
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe("Recreate");
    const pvc = one(objects, "PersistentVolumeClaim");
    const data = deployment.spec.template.spec.volumes.find((v: any) => v.name === "data");
    expect(data).toEqual({ name: "data", persistentVolumeClaim: { claimName: pvc.metadata.name } });
    expect(objects.filter((o) => o.kind === "PodDisruptionBudget")).toHaveLength(0);
    const env = deployment.spec.template.spec.containers[0].env.map((e: any) => e.name);
    expect(env).not.toContain("CERTFLEET_DATABASE__URL");
  });

  it("postgres: several replicas, a PodDisruptionBudget over them, the database URL from a Secret", () => {
    const objects = rendered.get("overlays/postgres")!;
    const deployment = one(objects, "Deployment");
    expect(deployment.spec.replicas).toBeGreaterThan(1);
    const pdb = one(objects, "PodDisruptionBudget");
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable).toBe(1);
    const container = deployment.spec.template.spec.containers[0];
    const url = container.env.find((e: any) => e.name === "CERTFLEET_DATABASE__URL");
    expect(url.valueFrom.secretKeyRef).toEqual({ name: "certfleet-database", key: "url" });
    expect(objects.filter((o) => o.kind === "PersistentVolumeClaim")).toHaveLength(0);
  });

  it("the rendered configuration loads with the container's environment, Akash's letsEncrypt choices included", async () => {
    const expected: Record<string, { url: RegExp; directory: string; dns?: Record<string, unknown> }> = {
      "overlays/sqlite": { url: /^sqlite:\/data\/certfleet\.db$/, directory: "acme-v02" },
      "overlays/postgres": { url: /^postgres:\/\/certfleet:pw@db\.example/, directory: "acme-v02" },
      "examples/akash-cloudflare": {
        url: /^postgres:/,
        directory: "acme-v02",
        dns: { type: "cf", legoEnv: { CF_DNS_API_TOKEN: "cf-token-value" } },
      },
      "examples/akash-gcloud-staging": {
        url: /^sqlite:/,
        directory: "acme-staging-v02",
        dns: {
          type: "gcloud",
          legoEnv: { GCE_SERVICE_ACCOUNT_FILE: "/run/secrets/certfleet-dns-gcloud/service-account.json" },
        },
      },
    };
    for (const [dir, want] of Object.entries(expected)) {
      const objects = rendered.get(dir)!;
      const deployment = one(objects, "Deployment");
      const pod = deployment.spec.template.spec;
      const container = pod.containers[0];
      const file = join(work, dir.replace("/", "-") + ".yaml");
      await writeFile(file, one(objects, "ConfigMap").data["certfleet.yaml"]);
      const config = resolveConfig(await loadConfigFile(file, containerEnv(container)), "/");
      expect(config.dataDir).toBe("/data");
      expect(config.storage.url, dir).toMatch(want.url);
      expect(config.storage.encryptionKey).toEqual(Buffer.alloc(32, 7));
      expect(config.auth.bootstrap).toBe(false);
      expect(config.auth.apiKeys).toEqual([
        expect.objectContaining({ name: "admin", admin: true, keyHash: "sha256:" + "ab".repeat(32) }),
      ]);
      // unprivileged HTTP-01, on the port the container declares
      expect(config.server.http01.port).toBe(
        container.ports.find((p: any) => p.name === "http01").containerPort,
      );
      expect(config.server.port).toBe(container.ports.find((p: any) => p.name === "https").containerPort);
      const acme = config.issuers.find((i) => i.type === "acme");
      expect(acme, dir).toMatchObject({ email: "ops@example.com" });
      expect(acme?.type === "acme" && acme.directoryUrl).toBe(
        `https://${want.directory}.api.letsencrypt.org/directory`,
      );
      if (want.dns) {
        expect(config.dns.providers).toEqual([expect.objectContaining(want.dns)]);
        expect(acme?.type === "acme" && acme.challenges[0]).toBe("dns-01");
      } else {
        expect(config.dns.providers).toEqual([]);
        expect(acme?.type === "acme" && acme.challenges[0]).toBe("http-01");
      }
      // a file a credential points at is mounted from a Secret
      for (const path of Object.values(config.dns.providers[0]?.legoEnv ?? {}).filter((v) =>
        v.startsWith("/"),
      )) {
        // the deepest mount holding the path (a mount inside the read-only config volume would fail)
        const mount = container.volumeMounts
          .filter((m: any) => path.startsWith(m.mountPath + "/"))
          .sort((a: any, b: any) => b.mountPath.length - a.mountPath.length)[0];
        expect(mount, path).toBeDefined();
        expect(mount.mountPath.startsWith("/etc/certfleet/")).toBe(false);
        const volume = pod.volumes.find((v: any) => v.name === mount.name);
        expect(volume.secret.secretName).toMatch(/^certfleet-dns-/);
      }
    }
  });
});
