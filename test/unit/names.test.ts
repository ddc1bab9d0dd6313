import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.js";
import { normalizeName, normalizeNames, patternMatches } from "../../src/core/names.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof ValidationError ? e.code : "not-a-validation-error";
  }
  return undefined;
}

describe("normalizeName", () => {
  it.each([
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["*.example.com", "*.example.com"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["a-b.c-d.example", "a-b.c-d.example"],
  ])("accepts %s", (input, want) => {
    expect(normalizeName(input)).toBe(want);
  });

  it.each([
    ["", "domain_invalid"],
    ["localhost", "domain_invalid"],
    ["exa mple.com", "domain_invalid"],
    ["-a.example.com", "domain_invalid"],
    ["a_b.example.com", "domain_invalid"],
    ["example.123", "domain_invalid"],
    ["ab--cd.example.com", "domain_invalid"],
    ["192.0.2.1", "domain_ip_literal"],
    ["[2001:db8::1]", "domain_ip_literal"],
    ["2001:db8::1", "domain_ip_literal"],
    ["a.*.example.com", "domain_wildcard_invalid"],
    ["*a.example.com", "domain_wildcard_invalid"],
    ["*.*.example.com", "domain_wildcard_invalid"],
    ["*.com", "domain_wildcard_invalid"],
    ["bücher.example", "domain_not_punycode"],
    ["xn--zz.example", "domain_not_punycode"],
    ["a".repeat(64) + ".example.com", "domain_too_long"],
    [Array.from({ length: 60 }, () => "abcd").join(".") + ".com", "domain_too_long"],
  ])("rejects %s with %s", (input, code) => {
    expect(codeOf(() => normalizeName(input))).toBe(code);
  });

  it("rejects non-strings", () => {
    expect(codeOf(() => normalizeName(42))).toBe("domain_invalid");
  });
});

describe("normalizeNames", () => {
  it("deduplicates and keeps the first name first", () => {
    expect(normalizeNames(["b.example.com", "A.example.com", "b.example.com."])).toEqual([
      "b.example.com",
      "a.example.com",
    ]);
  });
  it("refuses an empty list and too many names", () => {
    expect(codeOf(() => normalizeNames([]))).toBe("domains_empty");
    expect(codeOf(() => normalizeNames(Array.from({ length: 101 }, (_, i) => `n${i}.example.com`)))).toBe(
      "domains_too_many",
    );
  });
});

describe("patternMatches", () => {
  it.each([
    ["example.com", "example.com", true],
    ["example.com", "www.example.com", false],
    ["*.example.com", "*.example.com", true],
    ["*.example.com", "www.example.com", true],
    ["*.example.com", "a.b.example.com", false],
    ["*.example.com", "example.com", false],
    [".example.com", "a.b.example.com", true],
    [".example.com", "*.b.example.com", true],
    [".example.com", "example.com", false],
    [".example.com", "badexample.com", false],
    ["*", "anything.example.org", true],
  ])("%s covers %s: %s", (pattern, name, want) => {
    expect(patternMatches(pattern, name)).toBe(want);
  });
});
