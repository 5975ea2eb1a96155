// The seat map of one train for a trip: free or taken per seat, pick, book, pay, cancel.
import { api, el, explain, getToken, newKey, say, signIn, tokenProblem } from "/console/common.js";
import { act, describe, showBookings } from "/console/bookings.js";
import { admissionFor, dropAdmission, liveSales, waitInQueue } from "/console/queue.js";

const POLL_MS = 1000;
const routeId = decodeURIComponent(location.pathname.split("/").pop());
const message = document.getElementById("message");
const trip = document.getElementById("trip");
const bookForm = document.getElementById("book");
const seatEls = new Map(); // "03-07C" -> button
const picks = new Map(); // "03-07C" -> {coach, seat, klass}
let route = null;
let from = "";
let to = "";
let pendingKey = null; // kept until a booking attempt gets a definite answer
let sale = null; // the sale (scheduled, open, paused or sold out) this train is in, if any
let stopQueue = () => {};

const mine = () => showBookings(document.getElementById("mine-section"), document.getElementById("mine"), message, refresh);

/** While the train is in a sale, booking waits for an admission from its queue. */
function gate() {
  stopQueue();
  stopQueue = () => {};
  const held = sale ? admissionFor(sale.sale_id) : null;
  const queueing = Boolean(sale) && !held;
  bookForm.hidden = queueing;
  document.getElementById("queue-section").hidden = !queueing;
  const hint = document.getElementById("admission-hint");
  hint.hidden = !held;
  hint.textContent = held && held.waitlist
    ? "The sale sold out: booking puts you on its waitlist, and seats that come back go to it in order."
    : "Admitted from the sale's queue: book now.";
  if (queueing) {
    stopQueue = waitInQueue(document.getElementById("queue"), sale,
      { message, seatMap: location.href, onAdmitted: gate });
  }
}

async function checkSale() {
  sale = getToken() ? (await liveSales(routeId)).get(routeId) || null : null;
  gate();
}

function drawCoaches(body) {
  const map = document.getElementById("map");
  seatEls.clear();
  map.replaceChildren(...body.coaches.map((c) => {
    const grid = el("div", { class: "grid", style: null });
    grid.style.gridTemplateColumns = `repeat(${c.letters.length}, auto)`;
    for (let row = 1; row <= c.rows; row++) {
      for (const letter of c.letters) {
        const seat = `${String(row).padStart(2, "0")}${letter}`;
        const id = `${c.number}-${seat}`;
        const b = el("button", { type: "button", class: "seat", "data-seat": id, "data-seat-class": c.class, "data-state": "free", title: `Coach ${c.number} seat ${seat} (${c.class})`,
          onclick: () => toggle(id, c.number, seat, c.class) }, seat);
        seatEls.set(id, b);
        grid.append(b);
      }
    }
    return el("div", { class: "coach", "data-coach": c.number }, el("h3", {}, `Coach ${c.number} · ${c.class}`), grid);
  }));
}

function paint(body) {
  if (seatEls.size === 0) drawCoaches(body);
  const taken = new Set();
  for (const c of body.coaches) for (const s of c.taken) taken.add(`${c.number}-${s}`);
  for (const [id, b] of seatEls) {
    const state = taken.has(id) ? "taken" : "free";
    if (b.dataset.state !== state) b.dataset.state = state;
    b.disabled = state === "taken";
    if (state === "taken" && picks.has(id)) {
      picks.delete(id);
      say(message, `Seat ${id} was just taken by someone else; pick another.`);
      renderPassengers();
    }
    b.classList.toggle("picked", picks.has(id));
  }
  const free = Object.entries(body.free).map(([k, n]) => `${n} ${k}`).join(", ");
  document.getElementById("map-title").textContent = `${from} → ${to}: ${free} free`;
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function refresh() {
  if (!from || !to) return;
  const res = await api(`/v1/routes/${encodeURIComponent(routeId)}/seats?${new URLSearchParams({ from, to })}`);
  if (!res.ok) return say(message, explain(res));
  document.getElementById("map-section").hidden = false;
  paint(res.body);
}

function toggle(id, coach, seat, klass) {
  if (seatEls.get(id).dataset.state !== "free") return;
  if (picks.has(id)) picks.delete(id);
  else {
    for (const [k, p] of picks) if (p.klass !== klass) picks.delete(k); // one class per booking
    if (picks.size >= 5) return say(message, "A booking carries at most 5 passengers.");
    picks.set(id, { coach, seat, klass });
  }
  for (const [k, b] of seatEls) b.classList.toggle("picked", picks.has(k));
  renderPassengers();
}

function renderPassengers() {
  const picked = [...picks.values()];
  const klass = bookForm.elements.class;
  const count = bookForm.elements.count;
  if (picked.length) {
    klass.value = picked[0].klass;
    count.value = picked.length;
  }
  klass.disabled = count.disabled = picked.length > 0;
  document.getElementById("pick-hint").textContent = picked.length
    ? `Picked: ${picked.map((p) => `${p.coach}-${p.seat}`).join(", ")} (${picked[0].klass}). Click a seat again to drop it.`
    : "Pick seats on the map, or choose a class and let the server pick the best ones.";
  document.getElementById("book-button").textContent = picked.length ? "Book picked seats" : "Book (server chooses)";
  const n = Math.max(1, Math.min(5, Number(count.value) || 1));
  const box = document.getElementById("passengers");
  const old = [...box.querySelectorAll(".passenger")].map((p) => [p.querySelector("[name=name]").value, p.querySelector("[name=pid]").value]);
  box.replaceChildren(...Array.from({ length: n }, (_, i) => el("div", { class: "passenger" },
    el("label", {}, `Passenger ${i + 1} name`, el("input", { name: "name", required: true, maxlength: 64, value: old[i]?.[0] || "" })),
    el("label", {}, "ID number", el("input", { name: "pid", required: true, maxlength: 32, pattern: "[0-9A-Za-z-]+", value: old[i]?.[1] || "" })))));
  pendingKey = null; // a different request from here on
}

function showHeld(b) {
  const box = document.getElementById("held");
  const done = () => { box.replaceChildren(); mine(); refresh(); };
  box.replaceChildren(el("div", { class: "booking", "data-booking-id": b.booking_id, "data-status": b.status },
    el("span", { class: "status" }, b.status),
    el("span", {}, describe(b)),
    b.hold_expires_at ? el("span", { class: "hint" }, `pay by ${b.hold_expires_at.slice(11, 16)} UTC`) : null,
    el("button", { type: "button", "data-action": "pay", onclick: () => act(b, "pay", message, done) }, "Pay"),
    el("button", { type: "button", class: "quiet", "data-action": "cancel", onclick: () => act(b, "cancel", message, done) }, "Cancel")));
}

bookForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const stop = tokenProblem();
  if (stop) return say(message, stop); // nothing sent, nothing changed
  const passengers = [...document.querySelectorAll("#passengers .passenger")].map((p) => ({
    name: p.querySelector("[name=name]").value.trim(), id: p.querySelector("[name=pid]").value.trim() }));
  const picked = [...picks.values()];
  const body = { from, to, class: bookForm.elements.class.value, passengers };
  if (picked.length) body.seats = picked.map((p) => ({ coach: p.coach, seat: p.seat }));
  const held = sale ? admissionFor(sale.sale_id) : null;
  if (held && held.waitlist) body.waitlist = true;
  pendingKey = pendingKey || newKey();
  const headers = { "Idempotency-Key": pendingKey };
  if (held) headers.Admission = held.token;
  const button = document.getElementById("book-button");
  button.disabled = true;
  const res = await api(`/v1/routes/${encodeURIComponent(routeId)}/bookings`, { method: "POST", body, auth: true, headers });
  button.disabled = false;
  if (res.status === 503 || res.status === 0) return say(message, `${explain(res)} Press Book again: the retry is safe.`);
  pendingKey = null;
  if (res.status === 403 && res.body.type === "not-admitted") { // no admission, or it lapsed
    if (sale) dropAdmission(sale.sale_id);
    say(message, "This train is in a sale: you can book once your turn comes in its queue (above).");
    return checkSale();
  }
  if (!res.ok) return say(message, explain(res));
  picks.clear();
  renderPassengers();
  say(message, res.status === 202 ? "You are on the waitlist." : `Held: ${describe(res.body)}. Pay to keep it.`, "ok");
  showHeld(res.body);
  refresh();
  mine();
});
bookForm.elements.count.addEventListener("input", renderPassengers);

trip.addEventListener("submit", (e) => {
  e.preventDefault();
  from = trip.elements.from.value;
  to = trip.elements.to.value;
  history.replaceState(null, "", `${location.pathname}?${new URLSearchParams({ from, to })}`);
  picks.clear();
  renderPassengers();
  say(message, "");
  refresh();
});

async function start() {
  signIn(document.getElementById("signin"), () => { mine(); checkSale(); });
  const res = await api(`/v1/routes/${encodeURIComponent(routeId)}`);
  if (!res.ok) return say(message, explain(res));
  route = res.body;
  document.getElementById("title").textContent = `${route.train} · ${route.date}`;
  document.title = `ticketd · ${route.train} ${route.date}`;
  const p = new URLSearchParams(location.search);
  from = p.get("from") || route.stations[0];
  to = p.get("to") || route.stations[route.stations.length - 1];
  document.getElementById("back").href = `/?${new URLSearchParams({ from, to, date: route.date })}`;
  for (const name of ["from", "to"]) {
    trip.elements[name].replaceChildren(...route.stations.map((s) => el("option", { value: s }, s)));
  }
  trip.elements.from.value = from;
  trip.elements.to.value = to;
  const classes = [...new Set(route.coaches.map((c) => c.class))];
  bookForm.elements.class.replaceChildren(...classes.map((k) => el("option", { value: k }, k)));
  await checkSale();
  document.getElementById("book-section").hidden = false;
  renderPassengers();
  await refresh();
  mine();
  // refresh by itself while open, so a seat sold elsewhere turns taken without a reload
  setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

start();
