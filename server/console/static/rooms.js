// The operator page's sales and their waiting rooms: queue, admissions, seats left; pause, resume.
import { api, el, explain, say } from "/console/common.js";

// what a button asks for, by the sale's state; a scheduled sale is not paused from here,
// since resuming it would open it before its time
const CHANGES = { open: ["pause", "paused"], paused: ["resume", "open"] };

const shown = (x) => (x === null || x === undefined ? "–" : String(x));

async function change(sale, state, message, done) {
  const res = await api(`/v1/sales/${encodeURIComponent(sale.sale_id)}`, { method: "PATCH", auth: true, body: { state } });
  if (!res.ok) return say(message, explain(res));
  await done(); // the page's poll clears its message: say it after
  say(message, `Sale ${res.body.sale_id} is ${res.body.state}.`, "ok");
}

/** One row per sale (latest opening first) into `tbody`; `done` is called after a change. */
export function drawRooms(tbody, sales, message, done) {
  tbody.replaceChildren(...sales.map((s) => {
    const stat = (key, value) => el("td", { "data-sale-stat": key }, shown(value));
    const [action, state] = CHANGES[s.state] || [];
    return el("tr", { "data-sale-id": s.sale_id, "data-sale-state": s.state },
      el("td", {}, s.sale_id),
      el("td", {}, s.routes.join(", ")),
      el("td", {}, new Date(s.opens_at).toLocaleString()),
      stat("state", s.state),
      stat("joined", s.joined),
      stat("admitted", s.admitted),
      stat("waiting", s.joined - s.admitted),
      stat("rate", s.admit_rate),
      el("td", {}, s.admit_per_second === null ? "automatic" : `${s.admit_per_second} / s`),
      stat("seats-left", s.seats_left),
      el("td", {}, action
        ? el("button", { type: "button", class: action === "pause" ? "quiet" : null, "data-action": action, onclick: () => change(s, state, message, done) },
          action === "pause" ? "Pause" : "Resume")
        : null));
  }));
}
