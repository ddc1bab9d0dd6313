/**
 * Whether any of `names` matches any pattern: `*` (everything), an exact name, `*.example.com` (one or
 * more labels below example.com) or `.example.com` (example.com itself and everything below it).
 */
export function matchesNamePatterns(names: readonly string[], patterns: readonly string[]): boolean {
  return names.some((raw) => {
    const name = raw.toLowerCase().replace(/\.$/, "");
    return patterns.some((p) => {
      const pattern = p.toLowerCase();
      if (pattern === "*") return true;
      if (pattern.startsWith("*.")) return name.endsWith(pattern.slice(1));
      if (pattern.startsWith(".")) return name === pattern.slice(1) || name.endsWith(pattern);
      return name === pattern;
    });
  });
}
