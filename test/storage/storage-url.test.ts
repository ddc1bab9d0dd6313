import { describe, expect, it } from "vitest";
import { parseStorageUrl } from "../../src/storage/storage-url.js";

describe("parseStorageUrl", () => {
  it.each([
    ["sqlite:/var/lib/certfleet/data.db", "/var/lib/certfleet/data.db"],
    ["sqlite:///var/lib/certfleet/data.db", "/var/lib/certfleet/data.db"],
    ["sqlite:data/certfleet.db", "data/certfleet.db"],
    ["sqlite::memory:", ":memory:"],
    ["/var/lib/certfleet/data.db", "/var/lib/certfleet/data.db"],
    ["./certfleet.db", "./certfleet.db"],
  ])("%s is SQLite at %s", (url, filename) => {
    expect(parseStorageUrl(url)).toEqual({ dialect: "sqlite", filename });
  });

  it("passes a PostgreSQL URL through untouched when it names no schema", () => {
    const url = "postgresql://user:p%40ss@db.internal:5432/certfleet?sslmode=require";
    expect(parseStorageUrl(url)).toEqual({ dialect: "postgres", connectionString: url });
  });

  it("takes ?schema= out of the connection string", () => {
    expect(parseStorageUrl("postgres://postgres@127.0.0.1:5432/test?schema=run_1&sslmode=disable")).toEqual({
      dialect: "postgres",
      connectionString: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
      schema: "run_1",
    });
  });

  it.each([
    "",
    "sqlite:",
    "mysql://localhost/db",
    "postgres://localhost/db?schema=Upper",
    "postgres://localhost/db?schema=a;drop",
    "postgres://localhost/db?schema=",
  ])("rejects %j with storage_url_invalid", (url) => {
    expect(() => parseStorageUrl(url)).toThrow(expect.objectContaining({ code: "storage_url_invalid" }));
  });

  it("keeps a password out of the error", () => {
    try {
      parseStorageUrl("postgres://u:hunter2@localhost/db?schema=BAD");
      expect.unreachable();
    } catch (e) {
      expect(JSON.stringify(e) + String(e)).not.toContain("hunter2");
    }
  });
});
