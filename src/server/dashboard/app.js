/* global document, window, sessionStorage, location, URLSearchParams */
/**
 * certfleet admin dashboard: plain ES module, no framework, no build step.
 *
 * - The operator's credential (an `Authorization` header value) lives in sessionStorage only and is
 *   sent to the admin API on every fetch; "Sign out" removes it.
 * - All data is rendered as text (text nodes, textContent, attribute values); never as HTML.
 * - Read-mostly: the only writes are enabling/disabling an identity and the legacy-methods switch.
 */

const CREDENTIAL_KEY = "certfleet.dashboard.authorization";
const DAY_MS = 86_400_000;
const AUDIT_LIMIT = 100;

/** An error answer of the API: its stable `code` and its message. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// --- small DOM helpers (text only) -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/**
 * Build an element. Children are nodes or strings; strings become text nodes. Props set attributes,
 * `class`, or event listeners (`onclick`, ...).
 */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof window.Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(headers, rows, emptyText) {
  if (rows.length === 0) return h("p", { class: "empty" }, emptyText);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

const badge = (text, kind = "") => h("span", { class: `badge ${kind}`.trim() }, text);

function formatTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** "in 12 days", "today", "3 days ago" */
function relativeDays(iso, now = Date.now()) {
  const days = Math.floor((new Date(iso).getTime() - now) / DAY_MS);
  if (days === 0) return "today";
  if (days > 0) return `in ${days} day${days === 1 ? "" : "s"}`;
  return `${-days} day${days === -1 ? "" : "s"} ago`;
}

// --- the API -----------------------------------------------------------------------------------------

const credential = {
  get: () => sessionStorage.getItem(CREDENTIAL_KEY),
  set: (value) => sessionStorage.setItem(CREDENTIAL_KEY, value),
  clear: () => sessionStorage.removeItem(CREDENTIAL_KEY),
};

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const authorization = credential.get();
  if (authorization) headers.authorization = authorization;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const error = data && data.error;
    throw new ApiError(
      res.status,
      (error && error.code) || `http_${res.status}`,
      (error && error.message) || res.statusText || "request failed",
    );
  }
  return data;
}

const describeError = (e) => (e instanceof ApiError ? `${e.code}: ${e.message}` : String(e.message || e));
const isAuthError = (e) => e instanceof ApiError && (e.status === 401 || e.status === 403);

// --- views -------------------------------------------------------------------------------------------

async function certificatesView(body, status) {
  const { certificates } = await api("GET", "/api/admin/certificates");
  const now = Date.now();
  certificates.sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  const failing = certificates.filter((c) => c.lastFailure).length;
  const soon = certificates.filter((c) => new Date(c.notAfter).getTime() - now < 14 * DAY_MS).length;
  status.textContent =
    `${certificates.length} certificate${certificates.length === 1 ? "" : "s"}` +
    ` · ${soon} expiring within 14 days · ${failing} with a failed renewal`;
  const rows = certificates.map((c) => {
    const left = new Date(c.notAfter).getTime() - now;
    const expiryClass = left < 0 ? "bad" : left < 7 * DAY_MS ? "warn" : "";
    const f = c.lastFailure;
    return h(
      "tr",
      { class: f ? "failed" : "", "data-id": c.id },
      h(
        "td",
        {},
        h("div", { class: "primary-name" }, c.names[0]),
        c.names.length > 1 ? h("div", { class: "muted small" }, c.names.slice(1).join(", ")) : null,
      ),
      h("td", {}, c.issuerId),
      h("td", {}, c.keyType, h("div", { class: "muted small" }, c.custody === "csr" ? "CSR" : "server key")),
      h(
        "td",
        { class: expiryClass },
        left < 0 ? `expired ${relativeDays(c.notAfter, now)}` : `expires ${relativeDays(c.notAfter, now)}`,
        h("div", { class: "muted small" }, formatTime(c.notAfter)),
      ),
      h("td", {}, formatTime(c.renewAt), h("div", { class: "muted small" }, relativeDays(c.renewAt, now))),
      h(
        "td",
        { class: "mono small", title: `serial ${c.serial}` },
        c.serial.length > 16 ? `${c.serial.slice(0, 16)}…` : c.serial,
        h("div", { class: "muted" }, `version ${c.version}`),
      ),
      h(
        "td",
        {},
        f
          ? h(
              "div",
              { class: "failure" },
              h("strong", {}, f.code),
              h("div", {}, f.message),
              h(
                "div",
                { class: "small" },
                `${f.failureCount} in a row, last ${formatTime(f.at)}`,
                f.nextAttemptAt ? `, next try ${formatTime(f.nextAttemptAt)}` : "",
              ),
            )
          : h("span", { class: "muted" }, "—"),
      ),
    );
  });
  body.replaceChildren(
    table(
      ["Names", "Issuer", "Key", "Expires", "Renews", "Serial", "Last failure"],
      rows,
      "No certificates yet. They appear here once a client has requested one.",
    ),
  );
}

async function identitiesView(body, status) {
  const { identities } = await api("GET", "/api/admin/identities");
  identities.sort((a, b) => a.name.localeCompare(b.name));
  const enabled = identities.filter((i) => i.enabled).length;
  status.textContent = `${identities.length} identit${identities.length === 1 ? "y" : "ies"} · ${enabled} enabled`;

  const toggle = async (identity, button) => {
    button.disabled = true;
    try {
      await api("PATCH", `/api/admin/identities/${encodeURIComponent(identity.id)}`, {
        enabled: !identity.enabled,
      });
      await render();
    } catch (e) {
      if (isAuthError(e)) return signedOut(e);
      button.disabled = false;
      status.textContent = `Could not change ${identity.name}: ${describeError(e)}`;
      status.className = "error";
    }
  };

  const rows = identities.map((i) => {
    const button = h(
      "button",
      {
        type: "button",
        class: i.enabled ? "secondary danger" : "secondary",
        "aria-label": `${i.enabled ? "Disable" : "Enable"} ${i.name}`,
      },
      i.enabled ? "Disable" : "Enable",
    );
    button.addEventListener("click", () => toggle(i, button));
    return h(
      "tr",
      { class: i.enabled ? "" : "disabled", "data-id": i.id },
      h(
        "td",
        {},
        h("div", { class: "identity-name" }, i.name),
        h("div", { class: "muted small mono" }, i.id),
      ),
      h("td", {}, i.method),
      h(
        "td",
        { class: "small" },
        Object.entries(i.binding).map(([k, v]) => h("div", { class: "mono" }, `${k}=${v}`)),
      ),
      h(
        "td",
        {},
        i.grants.length > 0
          ? i.grants.map((g) => h("span", { class: "chip mono" }, g))
          : h("span", { class: "muted" }, "none"),
      ),
      h(
        "td",
        {},
        i.enabled ? badge("enabled", "ok") : badge("disabled", "bad"),
        i.admin ? badge("admin", "warn") : null,
      ),
      h("td", {}, button),
    );
  });
  body.replaceChildren(
    table(
      ["Name", "Method", "Binding", "Grants", "Status", ""],
      rows,
      "No identity records. Create them with `certfleet identity create` or the admin API.",
    ),
  );
}

function configValue(value) {
  if (value === "[redacted]") return h("span", { class: "redacted" }, "[redacted]");
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return h("span", { class: "mono" }, text);
}

async function dnsProvidersView(body, status) {
  const { providers } = await api("GET", "/api/admin/dns-providers");
  status.textContent = `${providers.length} DNS provider${providers.length === 1 ? "" : "s"} configured · secret fields are redacted by the server`;
  if (providers.length === 0) {
    body.replaceChildren(h("p", { class: "empty" }, "No DNS providers configured: DNS-01 is not available."));
    return;
  }
  body.replaceChildren(
    h(
      "div",
      { class: "cards" },
      providers.map((p) =>
        h(
          "article",
          { class: "card provider", "data-id": p.id },
          h("h2", {}, p.id, " ", badge(p.type)),
          h(
            "dl",
            {},
            h("dt", {}, "Zones"),
            h(
              "dd",
              {},
              p.zones.length > 0 ? p.zones.map((z) => h("span", { class: "chip mono" }, z)) : "every name",
            ),
            h("dt", {}, "Configured at"),
            h("dd", { class: "mono" }, p.source),
            h("dt", {}, "Propagation"),
            h(
              "dd",
              {},
              p.propagationTimeoutMs === null
                ? "default"
                : `timeout ${p.propagationTimeoutMs / 1000} s, every ${(p.propagationIntervalMs ?? 0) / 1000} s`,
            ),
          ),
          h("h3", {}, "Config"),
          Object.keys(p.config).length === 0
            ? h("p", { class: "muted" }, "(empty)")
            : h(
                "dl",
                { class: "config" },
                Object.entries(p.config).flatMap(([k, v]) => [
                  h("dt", { class: "mono" }, k),
                  h("dd", {}, configValue(v)),
                ]),
              ),
        ),
      ),
    ),
  );
}

const knownAuditTypes = new Set();
let auditFilter = "";

async function auditView(body, status) {
  const query = new URLSearchParams({ limit: String(AUDIT_LIMIT) });
  if (auditFilter) query.set("type", auditFilter);
  const { events } = await api("GET", `/api/admin/audit?${query}`);
  for (const e of events) knownAuditTypes.add(e.type);
  status.textContent = `latest ${events.length} event${events.length === 1 ? "" : "s"}${auditFilter ? ` of type ${auditFilter}` : ""}`;

  const input = h("input", {
    id: "audit-type",
    type: "search",
    list: "audit-types",
    placeholder: "e.g. auth.deny",
    value: auditFilter,
    spellcheck: "false",
    "aria-label": "Event type",
  });
  const form = h(
    "form",
    { class: "filter", id: "audit-filter" },
    h("label", { for: "audit-type" }, "Type"),
    input,
    h(
      "datalist",
      { id: "audit-types" },
      [...knownAuditTypes].sort().map((t) => h("option", { value: t })),
    ),
    h("button", { type: "submit" }, "Filter"),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          auditFilter = "";
          void render();
        },
      },
      "Clear",
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    auditFilter = input.value.trim();
    void render();
  });
  const outcomeKind = { allow: "ok", success: "ok", deny: "bad", failure: "bad" };
  const rows = events.map((e) =>
    h(
      "tr",
      {},
      h("td", { class: "nowrap" }, formatTime(e.at)),
      h("td", { class: "mono" }, e.type),
      h("td", {}, badge(e.outcome, outcomeKind[e.outcome] ?? "")),
      h("td", {}, e.actor ?? "system", e.method ? h("div", { class: "muted small" }, e.method) : null),
      h("td", { class: "mono small" }, e.subject ?? ""),
      h("td", { class: "mono small" }, e.remoteAddress ?? ""),
      h(
        "td",
        { class: "small" },
        e.reason ?? "",
        Object.keys(e.data ?? {}).length > 0
          ? h("div", { class: "mono muted" }, JSON.stringify(e.data))
          : null,
      ),
    ),
  );
  body.replaceChildren(
    form,
    table(["Time", "Type", "Outcome", "Actor", "Subject", "Address", "Detail"], rows, "No events."),
  );
}

async function settingsView(body, status) {
  const settings = await api("GET", "/api/admin/settings");
  status.textContent = "";
  const boxes = settings.legacyMethods.map((m) =>
    h("input", {
      type: "checkbox",
      id: `legacy-${m}`,
      "data-method": m,
      checked: settings.legacyMethodsEnabled[m],
    }),
  );
  const saved = h("span", { class: "muted", role: "status" });
  const form = h(
    "form",
    { class: "card settings", id: "settings-form" },
    h("h2", {}, "Legacy authentication methods"),
    h(
      "p",
      { class: "muted" },
      "Client id + secret and X.509 client certificates. Switching one off refuses it on every replica within a second, without a restart.",
    ),
    boxes.map((box) =>
      h("div", { class: "check" }, box, h("label", { for: box.id, class: "mono" }, box.dataset.method)),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"), saved),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = Object.fromEntries(boxes.map((b) => [b.dataset.method, b.checked]));
    saved.textContent = "saving…";
    try {
      await api("PUT", "/api/admin/settings", { legacyMethodsEnabled: value });
      saved.textContent = "saved";
    } catch (e) {
      if (isAuthError(e)) return signedOut(e);
      saved.textContent = `not saved: ${describeError(e)}`;
    }
  });
  body.replaceChildren(form);
}

const VIEWS = {
  certificates: { title: "Certificates", render: certificatesView },
  identities: { title: "Identities", render: identitiesView },
  "dns-providers": { title: "DNS providers", render: dnsProvidersView },
  audit: { title: "Audit log", render: auditView },
  settings: { title: "Settings", render: settingsView },
};

// --- shell: sign-in, navigation ----------------------------------------------------------------------

const currentView = () => {
  const name = location.hash.replace(/^#/, "");
  return Object.hasOwn(VIEWS, name) ? name : "certificates";
};

function showSignedIn(signedIn) {
  $("login").hidden = signedIn;
  $("view").hidden = !signedIn;
  $("nav").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
}

let renderSeq = 0;

async function render() {
  if (!credential.get()) return showLogin();
  showSignedIn(true);
  const name = currentView();
  const view = VIEWS[name];
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${view.title} · certfleet`;
  $("view-title").textContent = view.title;
  const status = $("view-status");
  const body = $("view-body");
  status.className = "muted";
  status.textContent = "Loading…";
  const seq = ++renderSeq;
  // render into a detached container so a slow answer for an old view never replaces a newer one
  const next = h("div");
  try {
    await view.render(next, status);
    if (seq === renderSeq) body.replaceChildren(...next.childNodes);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (isAuthError(e)) return signedOut(e);
    status.className = "error";
    status.textContent = `Could not load: ${describeError(e)}`;
    body.replaceChildren();
  }
}

function showLogin(message) {
  showSignedIn(false);
  $("view-body").replaceChildren();
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message ?? "";
  document.title = "Sign in · certfleet";
  $("login-secret").focus();
}

function signedOut(error) {
  credential.clear();
  showLogin(`Signed out: ${describeError(error)}`);
}

async function signIn(event) {
  event.preventDefault();
  const secret = $("login-secret").value.trim();
  if (!secret) return;
  // accept a pasted header value ("APIKey …", "Bearer …") as it is
  const authorization = /^(apikey|bearer)\s+\S/i.test(secret)
    ? secret
    : `${$("login-scheme").value} ${secret}`;
  credential.set(authorization);
  const button = event.submitter ?? $("login-form").querySelector("button");
  button.disabled = true;
  try {
    await api("GET", "/api/admin/settings");
    $("login-secret").value = "";
    $("login-error").hidden = true;
    await render();
  } catch (e) {
    credential.clear();
    showLogin(
      isAuthError(e) ? `Sign-in refused (${describeError(e)})` : `Sign-in failed (${describeError(e)})`,
    );
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  credential.clear();
  $("login-secret").value = "";
  showLogin();
}

$("login-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("refresh").addEventListener("click", () => void render());
window.addEventListener("hashchange", () => void render());
void render();
