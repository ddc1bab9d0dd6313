import type { KeyType } from "../core/key-types.js";

/**
 * Local key custody: the agent makes the key and sends only a CSR, so the key never leaves the
 * machine. The installed key is reused while it has the configured type — the server then recognises
 * the same (names, key) certificate and renews it in place; a new key is made on first install or when
 * `key_type` changes.
 */
export async function localKeyAndCsr(
  installedKeyPem: string | undefined,
  keyType: KeyType,
  domains: readonly string[],
): Promise<{ keyPem: string; csrPem: string; reused: boolean }> {
  // core/keys pulls in @peculiar/x509: loaded only for local custody.
  const { createCsr, generatePrivateKey, keyTypeOfPublicKey } = await import("../core/keys.js");
  let keyPem: string | undefined;
  if (installedKeyPem) {
    try {
      if (keyTypeOfPublicKey(installedKeyPem) === keyType) keyPem = installedKeyPem;
    } catch {
      keyPem = undefined; // unreadable: replace it
    }
  }
  const reused = keyPem !== undefined;
  keyPem ??= await generatePrivateKey(keyType);
  return { keyPem, csrPem: await createCsr(keyPem, domains), reused };
}
