// A buyer's place in a sale's waiting room: join, poll as advised, show it, keep the admission.
import { api, claims, el, explain, say } from "/console/common.js";

/** The sale states in which its trains are booked through its queue (or soon will be). */
const LIVE = new Set(["scheduled", "open", "paused", "sold-out"]);
const SENTENCES = {
  "not-open": (s) => `The sale opens at ${clock(s.opens_at)}. You are in its queue: everyone who joins before then gets a place drawn at random at the opening.`,
  waiting: () => "You are in the queue. Keep this page open: it follows your place by itself.",
  admitted: () => "Your turn: you may book now.",
  "sold-out": () => "This sale is sold out: every seat on its trains is taken.",
  closed: () => "This sale is closed: its trains are booked as usual, without queueing.",
};
// an admitted buyer sees "your turn" for a moment before the seat map opens
const ADMITTED_PAUSE_MS = 1200;

const clock = (iso) => new Date(iso).toLocaleTimeString();
const mine = (kind, saleId) => `ticketd.${kind}.${(claims() || {}).sub || ""}.${saleId}`;

/** The admission kept for the signed-in user in this sale: {token, waitlist}, or null. */
export function admissionFor(saleId) {
  try {
    return JSON.parse(sessionStorage.getItem(mine("admission", saleId)) || "null");
  } catch {
    return null;
  }
}

export function dropAdmission(saleId) {
  sessionStorage.removeItem(mine("admission", saleId));
}

/** The sales (scheduled, open, paused or sold out) by route id; listing needs a token. */
export async function liveSales(routeId = "") {
  const res = await api(`/v1/sales${routeId ? `?route=${encodeURIComponent(routeId)}` : ""}`, { auth: true });
  const byRoute = new Map();
  if (res.ok) for (const s of res.body.sales) if (LIVE.has(s.state)) for (const r of s.routes) byRoute.set(r, s);
  return byRoute;
}

/** A short label of a sale for a train in the results. */
export function saleLabel(sale) {
  if (sale.state === "scheduled") return `sale opens ${clock(sale.opens_at)}: queue`;
  if (sale.state === "sold-out") return "sale sold out";
  return sale.state === "paused" ? "sale paused: queue" : "on sale: queue";
}

function wait(seconds) {
  if (seconds === null || seconds === undefined) return "not known yet";
  return seconds < 90 ? `about ${Math.max(1, Math.ceil(seconds))} s` : `about ${Math.round(seconds / 60)} min`;
}

/**
 * Join `sale`'s queue and follow the place in `box` until admitted (then keep the admission
 * and call onAdmitted), sold out or closed. Polls exactly as the server advises. Returns a
 * function that stops it.
 */
export function waitInQueue(box, sale, { message, seatMap, onAdmitted }) {
  const id = sale.sale_id;
  const path = `/v1/sales/${encodeURIComponent(id)}/queue`;
  let ticket = null; // the signed place the join answers: polls are answered from it
  let timer = null;
  let stopped = false;
  let first = null; // people to go (you included) when first seen waiting: the bar's length
  let failed = false; // the last call's failure is on the page's message
  const sentence = el("p", { class: "queue-sentence", "data-queue-sentence": "" });
  const place = el("b", { "data-queue-place": "" });
  const ahead = el("b", { "data-queue-ahead": "" });
  const eta = el("b", { "data-queue-eta": "" });
  const bar = el("progress", { "data-queue-progress": "", max: 1 });
  const actions = el("div", { class: "row" });
  const view = el("div", { class: "queue", "data-queue-sale": id },
    sentence,
    el("div", { class: "queue-figures" },
      el("span", {}, "Your place ", place), el("span", {}, "People ahead ", ahead), el("span", {}, "Estimated wait ", eta)),
    bar, actions);
  box.replaceChildren(view);

  function show(q) {
    view.dataset.queueState = q.state;
    sentence.textContent = SENTENCES[q.state] ? SENTENCES[q.state](sale) : `Queue state: ${q.state}.`;
    place.textContent = q.place ?? "–";
    ahead.textContent = q.ahead ?? "–";
    eta.textContent = q.state === "waiting" ? wait(q.eta_seconds) : "–";
    eta.dataset.queueEta = q.eta_seconds ?? "";
    bar.hidden = q.state === "sold-out" || q.state === "closed"; // nothing to wait for
    if (q.state === "not-open") bar.removeAttribute("value"); // moving stripes: not started
    else if (q.state === "waiting") {
      first = Math.max(first ?? 0, q.ahead + 1);
      bar.max = first;
      bar.value = first - (q.ahead + 1);
      if (q.eta_seconds === null) sentence.textContent += " Admission is not moving just now (the sale may be paused); your place is kept.";
    } else bar.value = bar.max;
    actions.replaceChildren();
    if (q.state === "admitted") {
      const go = (e) => { e.preventDefault(); clearTimeout(timer); admit(q.admission, false); };
      actions.append(el("a", { href: seatMap, "data-queue-go": "", onclick: go }, "Go to the seat map →"));
    }
    if (q.state === "closed") actions.append(el("a", { href: seatMap }, "Seats →"));
    if (q.state === "sold-out" && q.waitlist && q.admission) {
      sentence.textContent += " You may join its waitlist: seats that come back go to it in order.";
      actions.append(el("button", { type: "button", "data-queue-waitlist": "", onclick: () => admit(q.admission, true) }, "Join the waitlist"));
    }
  }

  function admit(token, waitlist) {
    sessionStorage.setItem(mine("admission", id), JSON.stringify({ token, waitlist }));
    onAdmitted();
  }

  function later(seconds) {
    if (!stopped) timer = setTimeout(() => step(false), Math.max(1, seconds) * 1000);
  }

  async function step(join) {
    const res = join
      ? await api(path, { method: "POST", auth: true })
      : await api(path, { auth: true, headers: ticket ? { "Queue-Ticket": ticket } : {} });
    if (stopped) return;
    if (res.status === 429) return later(Number(res.headers.get("Retry-After")) || 1);
    if (!res.ok) {
      say(message, explain(res));
      failed = true;
      if (res.status === 0 || res.status >= 500) later(5); // the queue keeps the place meanwhile
      return;
    }
    if (failed) say(message, "");
    failed = false;
    const q = res.body;
    ticket = q.ticket || ticket;
    show(q);
    if (q.state === "admitted") timer = setTimeout(() => admit(q.admission, false), ADMITTED_PAUSE_MS);
    else if (q.state === "not-open" || q.state === "waiting") later(q.poll_after_seconds);
  }

  step(true);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
