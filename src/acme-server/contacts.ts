import { problem } from "./problems.js";

/** Account contacts (RFC 8555 §7.3): `mailto:` URLs with one plain address each, at most 10. */
const MAX_CONTACTS = 10;
const ADDRESS =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function parseContacts(input: unknown): string[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw problem("malformed", "contact must be an array of URLs");
  if (input.length > MAX_CONTACTS) throw problem("invalidContact", `at most ${MAX_CONTACTS} contacts`);
  return input.map((c: unknown) => {
    if (typeof c !== "string") throw problem("malformed", "contact must be an array of URLs");
    if (!c.startsWith("mailto:")) throw problem("unsupportedContact", "only mailto: contacts are supported");
    const address = c.slice("mailto:".length);
    if (address.length > 254 || !ADDRESS.test(address)) {
      throw problem("invalidContact", "a contact is not a single plain e-mail address");
    }
    return c;
  });
}
