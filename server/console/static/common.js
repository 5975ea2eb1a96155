// Shared by the console's pages: the bearer token, API calls, messages. No build step.

const TOKEN_KEY = "ticketd.token";

export const HOW_TO_GET_A_TOKEN =
  "Paste a bearer token from your identity system. For local use, `make token` prints " +
  "one (`make token USER_ID=bob`; `make token ADMIN=1` for the operator page).";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** The token's claims, decoded for display only (the server verifies it). */
export function claims(token = getToken()) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export function tokenExpired(token = getToken()) {
  const c = claims(token);
  return Boolean(c && typeof c.exp === "number" && c.exp * 1000 <= Date.now());
}

/** A fresh Idempotency-Key, made in the browser. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Call the API; resolves to {ok, status, body, headers}; never throws on an HTTP error. */
export async function api(path, { method = "GET", body, auth = false, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (auth) h.Authorization = `Bearer ${getToken()}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return { ok: false, status: 0, body: { detail: "The server did not answer; check your connection and retry." }, headers: new Headers() };
  }
  let parsed = null;
  try {
    parsed = await r.json();
  } catch {
    parsed = { detail: `The server answered ${r.status} without a readable body.` };
  }
  return { ok: r.ok, status: r.status, body: parsed, headers: r.headers };
}

/** The sentence to show for a failed call. */
export function explain(res) {
  const detail = (res.body && res.body.detail) || `HTTP ${res.status}`;
  if (res.status === 401) {
    return `Your token was refused: ${detail} Sign in again with a fresh token. ${HOW_TO_GET_A_TOKEN}`;
  }
  if (res.status === 403) return `${detail} Sign in with an admin token (\`make token ADMIN=1\`).`;
  return detail;
}

export function say(node, text, kind = "error") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

/** Checks before an action that needs a token; returns the sentence that stops it, or "". */
export function tokenProblem() {
  if (!getToken()) return `You are not signed in. ${HOW_TO_GET_A_TOKEN}`;
  if (tokenExpired()) return `Your token has expired; nothing was sent. ${HOW_TO_GET_A_TOKEN}`;
  return "";
}

/** The sign-in box: paste a token, keep it for this browser tab, sign out. */
export function signIn(box, onChange = () => {}) {
  const render = () => {
    box.replaceChildren();
    const token = getToken();
    if (token) {
      const c = claims(token) || {};
      const who = c.sub ? `${c.sub}${c.role === "admin" ? " (admin)" : ""}` : "an unreadable token";
      const until = typeof c.exp === "number" ? new Date(c.exp * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "no expiry";
      const expired = tokenExpired(token);
      box.append(
        el("span", { class: expired ? "who expired" : "who", "data-signed-in": c.sub || "" },
          expired ? `Token of ${who} expired at ${until}. ` : `Signed in as ${who}, until ${until}. `),
        el("button", { type: "button", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); render(); onChange(); } }, "Sign out"),
      );
      return;
    }
    const input = el("input", { type: "password", name: "token", placeholder: "Bearer token", autocomplete: "off", "aria-label": "Bearer token" });
    const save = () => {
      const t = input.value.trim().replace(/^Bearer\s+/i, "");
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      render();
      onChange();
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
    box.append(
      el("p", { class: "hint", "data-hint": "token" }, HOW_TO_GET_A_TOKEN),
      el("div", { class: "row" }, input, el("button", { type: "button", onclick: save }, "Sign in")),
    );
  };
  render();
}

export function today() {
  return new Date().toISOString().slice(0, 10);
}
