import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/authenticator.js";
import { authorizeNames, isNameGranted, refusedNames } from "../../src/auth/grants.js";
import { ForbiddenError } from "../../src/core/errors.js";

const principal = (grants: Principal["grants"]): Principal => ({
  id: "p",
  name: "p",
  method: "api_key",
  grants,
  admin: false,
});

// [pattern, name, covered] — the table in docs/auth/grants.md.
const TABLE: [string, string, boolean][] = [
  ["example.com", "example.com", true],
  ["example.com", "www.example.com", false],
  ["*.example.com", "*.example.com", true],
  ["*.example.com", "a.example.com", true],
  ["*.example.com", "example.com", false],
  ["*.example.com", "a.b.example.com", false],
  ["*.example.com", "*.b.example.com", false],
  [".example.com", "a.example.com", true],
  [".example.com", "a.b.example.com", true],
  [".example.com", "*.b.example.com", true],
  [".example.com", "example.com", false],
  [".example.com", "badexample.com", false],
  ["*.example.com", "a.badexample.com", false],
  ["*", "anything.test", true],
];

describe("grant patterns", () => {
  it.each(TABLE)("%s covers %s: %s", (pattern, name, covered) => {
    expect(isNameGranted([pattern], name)).toBe(covered);
  });

  it('"all" covers everything and an empty list nothing', () => {
    expect(isNameGranted("all", "x.test")).toBe(true);
    expect(isNameGranted([], "x.test")).toBe(false);
  });
});

describe("authorizeNames", () => {
  it("passes when every name is covered", () => {
    expect(() =>
      authorizeNames(principal(["example.com", "*.example.com"]), ["example.com", "www.example.com"]),
    ).not.toThrow();
  });

  it("throws 403 domain_not_granted listing only the refused names", () => {
    let error: unknown;
    try {
      authorizeNames(principal([".example.com"]), ["a.example.com", "example.com", "other.test"]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as ForbiddenError).code).toBe("domain_not_granted");
    expect((error as ForbiddenError).status).toBe(403);
    expect((error as ForbiddenError).details).toEqual({ names: ["example.com", "other.test"] });
  });

  it("refuses everything for a principal without grants", () => {
    expect(refusedNames([], ["a.test", "b.test"])).toEqual(["a.test", "b.test"]);
    expect(() => authorizeNames(principal([]), ["a.test"])).toThrow(ForbiddenError);
  });
});
