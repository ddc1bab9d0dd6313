import { readFile } from "node:fs/promises";
import { ConfigError } from "../../core/errors.js";

/**
 * Owner and group for installed files: numeric ids as given, names looked up in /etc/passwd and
 * /etc/group (NSS sources such as LDAP are not consulted: use numeric ids there). Lookups happen once
 * at start-up so a typo fails the config check, not the first renewal.
 */
export interface Ownership {
  uid: number | undefined;
  gid: number | undefined;
}

async function lookup(file: string, name: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  return undefined;
}

export async function resolveOwnership(
  owner: string | number | undefined,
  group: string | number | undefined,
  path: string,
  files: { passwd: string; group: string } = { passwd: "/etc/passwd", group: "/etc/group" },
): Promise<Ownership> {
  const issues: { path: string; message: string }[] = [];
  const resolveOne = async (value: string | number | undefined, file: string, key: string, what: string) => {
    if (value === undefined) return undefined;
    if (typeof value === "number" || /^\d+$/.test(value)) return Number(value);
    const id = await lookup(file, value);
    if (id === undefined)
      issues.push({ path: `${path}.${key}`, message: `no ${what} named "${value}" in ${file}` });
    return id;
  };
  const uid = await resolveOne(owner, files.passwd, "owner", "user");
  const gid = await resolveOne(group, files.group, "group", "group");
  if (issues.length > 0) throw new ConfigError(issues);
  return { uid, gid };
}
