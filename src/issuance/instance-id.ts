import { randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * A stable id for this data directory (`<dataDir>/instance-id`, created once, mode 0600): the prefix
 * of this instance's lock owners, so a restarted process takes back its previous life's locks at once.
 * Replicas have their own data directories, hence their own ids.
 */
export async function loadOrCreateInstanceId(path: string): Promise<string> {
  const read = async () => (await readFile(path, "utf8")).trim();
  try {
    const id = await read();
    if (id) return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const id = randomUUID();
  try {
    await writeFile(path, id + "\n", { mode: 0o600, flag: "wx" });
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return read(); // another process won the race
    throw e;
  }
}
