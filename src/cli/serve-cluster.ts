import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../core/logger.js";

/**
 * `certfleet serve` with `server.workers` > 1: the primary process only supervises; each worker is a
 * full certfleet (the same composition root, its own connections, caches and background jobs), that is
 * a replica sharing nothing but storage — the state replicas already share (nonces, rate limits,
 * challenge tokens, locks) lives there. node:cluster hands each worker connections from the same
 * listeners.
 *
 * - Start: worker 1 starts alone (migrations, CA creation and the bootstrap key happen once) and prints
 *   the banner; the others start after it is listening. A worker that fails to start makes the primary
 *   stop the rest and exit with that worker's code, as a single process would.
 * - A worker that dies later is replaced (at most once a second per slot, so a crash loop cannot spin).
 * - SIGHUP goes to every worker; SIGTERM / SIGINT too, and the primary exits 0 when all have stopped
 *   (each worker applies server.shutdownTimeout). If the primary itself dies, the workers exit.
 */

/** The environment variable telling a worker its slot (1-based); slot 1 prints the banner. Not CERTFLEET_*, which names config keys. */
export const WORKER_SLOT_ENV = "CF_SERVE_WORKER_SLOT";

export function workerSlot(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(process.env[WORKER_SLOT_ENV]);
  return Number.isInteger(slot) && slot > 0 ? slot : undefined;
}

const RESTART_MIN_INTERVAL_MS = 1000;
const READY_MESSAGE = "certfleet:ready";

/** In a worker: tell the primary this worker has started (every listener is up). */
export function reportWorkerReady(): void {
  if (cluster.isWorker) process.send?.(READY_MESSAGE);
}

export async function superviseWorkers(count: number, logger: Logger): Promise<void> {
  const bySlot = new Map<number, Worker>();
  const startedAt = new Map<number, number>();
  let stopping = false;

  /** Fork the worker for `slot`; resolves once it has started, rejects with its exit code if it dies first. */
  const fork = (slot: number) =>
    new Promise<void>((resolve, reject) => {
      const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) });
      bySlot.set(slot, worker);
      startedAt.set(slot, Date.now());
      let listening = false;
      worker.on("message", (message: unknown) => {
        if (message !== READY_MESSAGE || listening) return;
        listening = true;
        resolve();
      });
      worker.once("exit", (code, signal) => {
        if (bySlot.get(slot) === worker) bySlot.delete(slot);
        if (!listening) return reject(Object.assign(new Error("worker did not start"), { code: code ?? 1 }));
        if (stopping) return;
        logger.error({ worker: slot, code, signal }, "worker exited; starting a new one");
        const wait = Math.max(0, startedAt.get(slot)! + RESTART_MIN_INTERVAL_MS - Date.now());
        setTimeout(() => {
          if (!stopping)
            fork(slot).catch(() => logger.error({ worker: slot }, "replacement worker failed to start"));
        }, wait);
      });
    });

  const stopAll = (signal: NodeJS.Signals) => {
    for (const worker of bySlot.values()) worker.process.kill(signal);
  };

  try {
    await fork(1);
    await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 2)));
  } catch (e) {
    stopping = true;
    stopAll("SIGTERM");
    await allExited(bySlot);
    process.exit((e as { code?: number }).code || 1);
  }
  logger.info({ workers: count }, "all workers listening");

  process.on("SIGHUP", () => stopAll("SIGHUP"));
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stopAll(signal);
    void allExited(bySlot).then(() => process.exit(0));
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

async function allExited(bySlot: Map<number, Worker>): Promise<void> {
  await Promise.all(
    [...bySlot.values()].map((w) =>
      w.process.exitCode !== null || w.process.signalCode !== null
        ? undefined
        : new Promise((resolve) => w.once("exit", resolve)),
    ),
  );
}
