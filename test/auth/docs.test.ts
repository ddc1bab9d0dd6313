import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith(".ts")) out.push(await readFile(path, "utf8"));
  }
  return out;
}

describe("docs/auth/methods.md", () => {
  it("lists every audit reason the authenticators can produce", async () => {
    const code = (await sources("src/auth")).join("\n");
    const reasons = new Set<string>();
    for (const m of code.matchAll(/AuthFailure\(\s*"([a-z0-9_]+)"/g)) reasons.add(m[1]!);
    for (const m of code.matchAll(/\b[a-z]+: "(jwt_[a-z_]+)"/g)) reasons.add(m[1]!);
    expect(reasons.size).toBeGreaterThan(30);
    const doc = await readFile("docs/auth/methods.md", "utf8");
    const missing = [...reasons].filter((r) => !doc.includes(`\`${r}\``));
    expect(missing).toEqual([]);
  });
});
