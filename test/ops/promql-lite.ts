/**
 * Just enough PromQL to evaluate the alert rules in docs/metrics.md against a real scrape: numbers,
 * `time()`, metric selectors without matchers, `max by (labels) (expr)`, `+ - * /` and the comparison
 * filters `< > <= >=` with one-to-one matching on identical label sets. Anything else is an error, so
 * a rule this cannot read fails the test instead of passing untested.
 */
export type Vector = Map<string, number>;
type Value = number | Vector;

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition format, samples only. */
export function parseScrape(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unreadable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const keyOf = (labels: Record<string, string>) =>
  JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );

export function evaluate(expr: string, samples: readonly Sample[], time: number): Value {
  const tokens = expr.match(/\d+(?:\.\d+)?|[A-Za-z_:][\w:]*|>=|<=|[-+*/()<>,]/g) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (expected?: string) => {
    const t = tokens[i++];
    if (t === undefined || (expected !== undefined && t !== expected))
      throw new Error(`expected ${expected ?? "a token"} at ${i - 1} in ${expr}, got ${t}`);
    return t;
  };

  function primary(): Value {
    const t = take();
    if (/^\d/.test(t)) return Number(t);
    if (t === "(") {
      const v = comparison();
      take(")");
      return v;
    }
    if (t === "time") {
      take("(");
      take(")");
      return time;
    }
    if (t === "max" && peek() === "by") {
      take("by");
      take("(");
      const by: string[] = [];
      while (peek() !== ")") {
        by.push(take());
        if (peek() === ",") take(",");
      }
      take(")");
      take("(");
      const inner = comparison();
      take(")");
      if (typeof inner === "number") throw new Error("max by over a scalar");
      const out: Vector = new Map();
      for (const [key, value] of inner) {
        const labels = Object.fromEntries(JSON.parse(key) as [string, string][]);
        const k = keyOf(Object.fromEntries(by.map((l) => [l, labels[l] ?? ""])));
        out.set(k, Math.max(out.get(k) ?? -Infinity, value));
      }
      return out;
    }
    if (/^[A-Za-z_:]/.test(t)) {
      const v: Vector = new Map();
      for (const s of samples) if (s.name === t) v.set(keyOf(s.labels), s.value);
      return v;
    }
    throw new Error(`unsupported token ${t} in ${expr}`);
  }

  function binary(a: Value, b: Value, op: (x: number, y: number) => number | undefined): Value {
    if (typeof a === "number" && typeof b === "number") return op(a, b) ?? NaN;
    const out: Vector = new Map();
    const keys = typeof a === "number" ? [...(b as Vector).keys()] : [...a.keys()];
    for (const k of keys) {
      const x = typeof a === "number" ? a : a.get(k);
      const y = typeof b === "number" ? b : b.get(k);
      if (x === undefined || y === undefined) continue;
      const r = op(x, y);
      if (r !== undefined) out.set(k, r);
    }
    return out;
  }

  function product(): Value {
    let v = primary();
    while (peek() === "*" || peek() === "/") {
      const op = take();
      v = binary(v, primary(), (x, y) => (op === "*" ? x * y : x / y));
    }
    return v;
  }
  function sum(): Value {
    let v = product();
    while (peek() === "+" || peek() === "-") {
      const op = take();
      v = binary(v, product(), (x, y) => (op === "+" ? x + y : x - y));
    }
    return v;
  }
  function comparison(): Value {
    const v = sum();
    const op = peek();
    if (op !== "<" && op !== ">" && op !== ">=" && op !== "<=") return v;
    take();
    const test = {
      "<": (x: number, y: number) => x < y,
      ">": (x: number, y: number) => x > y,
      ">=": (x: number, y: number) => x >= y,
      "<=": (x: number, y: number) => x <= y,
    }[op];
    // a filter: keeps the left-hand value where the comparison holds
    return binary(v, sum(), (x, y) => (test(x, y) ? x : undefined));
  }

  const result = comparison();
  if (i !== tokens.length) throw new Error(`trailing tokens in ${expr}: ${tokens.slice(i).join(" ")}`);
  return result;
}

/** The `name` label of every element an alert expression returns at `time`. */
export function firing(expr: string, samples: readonly Sample[], time: number): string[] {
  const v = evaluate(expr, samples, time);
  if (typeof v === "number") throw new Error("an alert expression must return a vector");
  return [...v.keys()].map((k) => Object.fromEntries(JSON.parse(k) as [string, string][]).name ?? "").sort();
}
