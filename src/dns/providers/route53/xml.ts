/**
 * Just enough XML for AWS query/REST responses: elements, text, entities, CDATA; attributes and
 * namespaces are read past and ignored. Not a general parser — it fails loudly on anything it does not
 * understand rather than guessing.
 */
export interface XmlElement {
  name: string;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function parseXml(source: string): XmlElement {
  const root: XmlElement = { name: "#document", children: [], text: "" };
  const stack: XmlElement[] = [root];
  let i = 0;
  while (i < source.length) {
    const lt = source.indexOf("<", i);
    const textEnd = lt < 0 ? source.length : lt;
    if (textEnd > i) stack.at(-1)!.text += decodeEntities(source.slice(i, textEnd));
    if (lt < 0) break;
    if (source.startsWith("<?", lt)) {
      i = endOf(source, "?>", lt);
    } else if (source.startsWith("<!--", lt)) {
      i = endOf(source, "-->", lt);
    } else if (source.startsWith("<![CDATA[", lt)) {
      const end = endOf(source, "]]>", lt);
      stack.at(-1)!.text += source.slice(lt + 9, end - 3);
      i = end;
    } else if (source.startsWith("<!", lt)) {
      i = endOf(source, ">", lt);
    } else if (source.startsWith("</", lt)) {
      const end = endOf(source, ">", lt);
      const name = localName(source.slice(lt + 2, end - 1).trim());
      const open = stack.pop();
      if (!open || open === root || open.name !== name) throw new Error(`xml: unexpected </${name}>`);
      i = end;
    } else {
      const end = endOf(source, ">", lt);
      const inner = source.slice(lt + 1, end - 1);
      const selfClosing = inner.endsWith("/");
      const name = localName((selfClosing ? inner.slice(0, -1) : inner).trim().split(/\s/)[0] ?? "");
      if (!name) throw new Error("xml: empty tag");
      const element: XmlElement = { name, children: [], text: "" };
      stack.at(-1)!.children.push(element);
      if (!selfClosing) stack.push(element);
      i = end;
    }
  }
  if (stack.length !== 1) throw new Error(`xml: <${stack.at(-1)!.name}> is not closed`);
  const [top] = root.children;
  if (!top || root.children.length !== 1) throw new Error("xml: expected exactly one root element");
  return top;
}

function endOf(source: string, marker: string, from: number): number {
  const at = source.indexOf(marker, from);
  if (at < 0) throw new Error(`xml: unterminated construct at ${from}`);
  return at + marker.length;
}

function localName(qualified: string): string {
  const colon = qualified.indexOf(":");
  return colon < 0 ? qualified : qualified.slice(colon + 1);
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

/** Children named `name`. */
export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follow a path of element names, first match at each step. */
export function child(el: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let cur = el;
  for (const name of path) cur = cur?.children.find((c) => c.name === name);
  return cur;
}

/** Text at a path, trimmed; undefined when the element is missing. */
export function textAt(el: XmlElement | undefined, ...path: string[]): string | undefined {
  const found = child(el, ...path);
  return found ? found.text.trim() : undefined;
}

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}
