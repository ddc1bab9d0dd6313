import { join } from "node:path";
import { InstallError, errorText } from "../agent-errors.js";
import type { ResolvedCertificate } from "../config/load-agent-config.js";
import {
  configuredLinks,
  FILES,
  materialFingerprint,
  renderCertificateFiles,
  type CertificateMaterial,
  type Manifest,
} from "./certificate-files.js";
import type { Ownership } from "./file-ownership.js";
import { createGenerationStore, type GenerationStore } from "./generation-store.js";
import { ensureStableLinks } from "./stable-links.js";

/**
 * Install one certificate: render its files, and — only when something changed — commit them as a new
 * generation (generation-store.ts) and make sure the configured paths link into it (stable-links.ts).
 *
 * Reader contract (docs/agent/installing.md): every configured path is always a complete file; all
 * files of one certificate switch together at one instant. A reader that needs the key and the
 * certificate from one install either reads a single-file output (combined PEM, PKCS#12), or resolves
 * `<state>/certs/<name>/current` once and reads both files from that directory, or reloads after the
 * agent's reload command ran.
 *
 * `install` takes no AbortSignal on purpose: it is all-or-nothing local I/O that must not stop halfway
 * (a stop at any point would still be safe — see generation-store.ts — but would only waste the work).
 */
export interface InstallResult {
  changed: boolean;
  generation: string;
  /** The stable `current` directory. */
  currentPath: string;
}

export interface CertificateInstaller {
  readonly store: GenerationStore;
  /** The manifest of the installed generation, if any. */
  installed(): Promise<Manifest | undefined>;
  /** The private key of the installed generation (local key custody reuses it). */
  installedKey(): Promise<string | undefined>;
  /**
   * Install; when the files changed and the certificate has a reload command, the reload is recorded as
   * owed for the new generation before it goes live (generation-store.ts), until `reloadDone`.
   */
  install(material: CertificateMaterial, manifest: Omit<Manifest, "fingerprint">): Promise<InstallResult>;
  /** The live generation when its reload is still owed (a crash or a failed reload), else undefined. */
  reloadOwed(): Promise<string | undefined>;
  reloadDone(generation: string): Promise<void>;
}

export function createCertificateInstaller(
  cert: ResolvedCertificate,
  stateDir: string,
  ownership: Ownership,
): CertificateInstaller {
  const store = createGenerationStore(join(stateDir, "certs", cert.name));
  const links = configuredLinks(cert, store.currentPath);

  async function installed(): Promise<Manifest | undefined> {
    const raw = await store.readCurrent(FILES.manifest);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw.toString("utf8")) as Manifest;
    } catch {
      return undefined;
    }
  }

  return {
    store,
    installed,
    reloadOwed: () => store.reloadOwed(),
    reloadDone: (generation) => store.reloadDone(generation),
    async installedKey() {
      return (await store.readCurrent(FILES.key))?.toString("utf8");
    },
    async install(material, partial) {
      const fingerprint = materialFingerprint(material, cert, ownership);
      try {
        const before = await installed();
        const previous = await store.current();
        if (before?.fingerprint === fingerprint && previous) {
          await ensureStableLinks(links);
          await store.prune();
          return { changed: false, generation: previous, currentPath: store.currentPath };
        }
        const files = await renderCertificateFiles(material, cert, ownership, { ...partial, fingerprint });
        const generation = await store.commit(files, { reloadOwed: cert.reload !== undefined });
        await ensureStableLinks(links);
        await store.prune(previous);
        return { changed: true, generation, currentPath: store.currentPath };
      } catch (e) {
        throw new InstallError("install_failed", `could not install ${cert.name}: ${errorText(e)}`, {
          cause: e,
        });
      }
    },
  };
}
