import { createInterface } from "node:readline/promises";
import { createCertfleet } from "../composition.js";
import { systemClock } from "../core/clock.js";
import { ValidationError } from "../core/errors.js";
import { createLogger } from "../core/logger.js";
import { parseDuration } from "../config/schema.js";
import {
  createInventory,
  INVENTORY_STATUSES,
  type Inventory,
  type InventoryEntry,
  type InventoryFilter,
  type InventoryStatus,
} from "../issuance/inventory.js";
import { REVOCATION_REASON_NAMES, type RevocationReason } from "../issuance/issuer.js";
import { renewById } from "../issuance/renew-by-id.js";
import type { Storage } from "../storage/storage.js";
import { loadResolvedConfig } from "./load-config.js";
import { withConfiguredStorage } from "./open-storage.js";

/**
 * `certfleet certificates list|show|renew|revoke`: the inventory, read straight from the server's
 * storage (the same entries as `GET /api/admin/certificates`), and renewals / revocations through the
 * same certificate manager the server runs, so they work beside a running server on the same database.
 * `--json` prints machine-readable output: `list --json` a JSON array of every matching entry (all
 * pages), the others one object. Exit 2 for bad usage or an unknown id, 1 for a CA failure.
 */
interface Common {
  config?: string;
  json?: boolean;
}

export interface ListOptions extends Common {
  status?: string;
  issuer?: string;
  owner?: string;
  /** A duration: 30d, 12h, 3600s. */
  expiringWithin?: string;
  search?: string;
}

const PAGE = 500;

function inventoryOf(storage: Storage): Inventory {
  return createInventory({ certificates: storage.certificates, kv: storage.kv, clock: systemClock });
}

export function listFilter(opts: ListOptions): InventoryFilter {
  if (opts.status !== undefined && !(INVENTORY_STATUSES as readonly string[]).includes(opts.status)) {
    throw new ValidationError("status_invalid", `--status must be one of ${INVENTORY_STATUSES.join(", ")}`);
  }
  let expiringWithinSeconds: number | undefined;
  if (opts.expiringWithin !== undefined) {
    const raw = /^\d+$/.test(opts.expiringWithin) ? `${opts.expiringWithin}s` : opts.expiringWithin;
    try {
      expiringWithinSeconds = Math.floor(parseDuration(raw) / 1000);
    } catch {
      throw new ValidationError(
        "duration_invalid",
        `--expiring-within takes a duration such as 30d, 12h or 3600s, got "${opts.expiringWithin}"`,
      );
    }
  }
  return {
    status: opts.status as InventoryStatus | undefined,
    issuer: opts.issuer,
    owner: opts.owner,
    expiringWithinSeconds,
    search: opts.search,
  };
}

export async function certificatesListCommand(opts: ListOptions): Promise<number> {
  const filter = listFilter(opts);
  return withConfiguredStorage(opts.config, async (storage) => {
    const inventory = inventoryOf(storage);
    const entries: InventoryEntry[] = [];
    let after: string | undefined;
    do {
      const page = await inventory.list({ ...filter, after, limit: PAGE });
      entries.push(...page.certificates);
      after = page.next ?? undefined;
    } while (after !== undefined);
    process.stdout.write(opts.json ? JSON.stringify(entries) + "\n" : renderTable(entries));
    return 0;
  });
}

export async function certificatesShowCommand(id: string, opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const entry = await inventoryOf(storage).get(id);
    process.stdout.write(opts.json ? JSON.stringify(entry) + "\n" : renderEntry(entry));
    return 0;
  });
}

/** Run `fn` with the server's certificate manager (built from the same config, not listening). */
async function withManager<T>(
  configPath: string | undefined,
  fn: (certfleet: Awaited<ReturnType<typeof createCertfleet>>, inventory: Inventory) => Promise<T>,
): Promise<T> {
  const config = await loadResolvedConfig(configPath);
  const certfleet = await createCertfleet(config, {
    // warnings and errors only: the answer goes to stdout
    logger: createLogger({ level: "warn" }),
    clock: systemClock,
    fetch: globalThis.fetch,
    env: process.env,
  });
  try {
    return await fn(certfleet, inventoryOf(certfleet.storage));
  } finally {
    await certfleet.stop();
  }
}

export async function certificatesRenewCommand(id: string, opts: Common): Promise<number> {
  return withManager(opts.config, async (certfleet, inventory) => {
    await renewById({ inventory, manager: certfleet.manager }, id, "cli");
    const entry = await inventory.get(id);
    process.stdout.write(
      opts.json
        ? JSON.stringify(entry) + "\n"
        : `renewed:  ${entry.names.join(", ")}\nserial:   ${entry.serial}\nexpires:  ${entry.notAfter}\n`,
    );
    return 0;
  });
}

export interface RevokeOptions extends Common {
  reason?: string;
  yes?: boolean;
  replace?: boolean;
}

export async function certificatesRevokeCommand(id: string, opts: RevokeOptions): Promise<number> {
  const reason = (opts.reason ?? "unspecified") as RevocationReason;
  if (!REVOCATION_REASON_NAMES.includes(reason)) {
    throw new ValidationError(
      "reason_invalid",
      `--reason must be one of ${REVOCATION_REASON_NAMES.join(", ")}`,
    );
  }
  return withManager(opts.config, async (certfleet, inventory) => {
    const before = await inventory.get(id);
    if (!opts.yes) {
      const question =
        `Revoke ${before.names.join(", ")} (serial ${before.serial ?? "none"}, owner ${before.owner ?? "unknown"}) ` +
        `for ${reason}? Every holder loses it${opts.replace ? "; a replacement is issued now" : ""}. [y/N] `;
      if (!(await confirm(question))) {
        process.stderr.write("certfleet: not revoked\n");
        return 1;
      }
    }
    await certfleet.manager.revoke({ id }, { reason, actor: "cli", replace: opts.replace ?? false });
    const entry = await inventory.get(id);
    process.stdout.write(
      opts.json
        ? JSON.stringify(entry) + "\n"
        : `revoked:  ${before.names.join(", ")} serial ${before.serial} (${reason})\n` +
            (opts.replace ? `replaced: serial ${entry.serial}, valid until ${entry.notAfter}\n` : ""),
    );
    return 0;
  });
}

/** Ask on stderr, read one line from stdin; only "y" or "yes" confirms (EOF does not). */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  try {
    process.stderr.write(question);
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(undefined));
    });
    return answer !== undefined && /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function renderTable(entries: InventoryEntry[]): string {
  if (entries.length === 0) return "no certificates\n";
  const rows = entries.map((e) => [
    e.id.slice(0, 12),
    e.status,
    e.notAfter ? e.notAfter.slice(0, 10) : "-",
    String(e.consecutiveFailures),
    e.issuer,
    e.owner ?? "-",
    e.names.join(","),
  ]);
  const header = ["ID", "STATUS", "NOT AFTER", "FAILS", "ISSUER", "OWNER", "NAMES"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

function renderEntry(e: InventoryEntry): string {
  const lines: [string, string][] = [
    ["id", e.id],
    ["names", e.names.join(", ")],
    ["status", e.status],
    ["issuer", e.issuer],
    ["owner", e.owner ?? "-"],
    ["key", e.keyType ? `${e.keyType} (${e.custody === "csr" ? "client's key" : "server key"})` : "-"],
    ["serial", e.serial ?? "-"],
    ["not before", e.notBefore ?? "-"],
    ["not after", e.notAfter ?? "-"],
    ["renews at", e.renewAt ?? "-"],
    ["version", String(e.version)],
    ["failures", String(e.consecutiveFailures)],
  ];
  if (e.lastError) {
    lines.push(["last error", `${e.lastError.code}: ${e.lastError.message} (${e.lastError.at})`]);
    if (e.lastError.nextAttemptAt) lines.push(["next attempt", e.lastError.nextAttemptAt]);
  }
  if (e.revocation) lines.push(["revoked", `${e.revocation.at} (${e.revocation.reason})`]);
  return lines.map(([k, v]) => `${(k + ":").padEnd(14)}${v}`).join("\n") + "\n";
}
