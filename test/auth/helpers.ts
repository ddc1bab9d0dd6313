import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { expect } from "vitest";
import { failureReason } from "../../src/auth/auth-failure.js";
import type { AuthRequest } from "../../src/auth/authenticator.js";
import { recordBindingKey } from "../../src/auth/binding.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { IdentityRecord, NewIdentity, Storage } from "../../src/storage/storage.js";

export const signal = new AbortController().signal;

export function authRequest(headers: IncomingHttpHeaders, extra: Partial<AuthRequest> = {}): AuthRequest {
  return { headers, remoteAddress: "127.0.0.1", ...extra };
}

export const bearer = (token: string) => authRequest({ authorization: `Bearer ${token}` });

/** A fresh, migrated in-memory SQLite Storage (the real implementation). */
export async function openStorage(): Promise<Storage> {
  const storage = createStorage({ url: "sqlite::memory:", encryptionKey: randomBytes(32) });
  await storage.migrate();
  return storage;
}

/** Create an identity record with its bindingKey derived the way the admin API derives it. */
export function createIdentity(
  storage: Storage,
  fields: Pick<NewIdentity, "method" | "binding" | "grants"> & Partial<NewIdentity>,
): Promise<IdentityRecord> {
  return storage.identities.createIdentity({
    id: randomUUID(),
    name: `${fields.method}-agent`,
    enabled: true,
    admin: false,
    secretHash: null,
    bindingKey: recordBindingKey(fields.method, fields.binding),
    ...fields,
  });
}

/** Assert a rejection is a 401 `unauthenticated` with the given internal reason. */
export async function expectAuthFailure(promise: Promise<unknown>, reason: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a rejection with reason ${reason}`).toBeDefined();
  expect((error as { code?: string }).code).toBe("unauthenticated");
  expect((error as { status?: number }).status).toBe(401);
  expect(failureReason(error)).toBe(reason);
}

/** Assert a rejection carries a CertfleetError code. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((error as { code?: string } | undefined)?.code).toBe(code);
  return error;
}
