// The buyer page: search trains of a date from A to B, link each to its seat map (through
// its sale's queue while it is in one).
import { api, el, explain, getToken, say, signIn, today, tokenProblem } from "/console/common.js";
import { showBookings } from "/console/bookings.js";
import { admissionFor, liveSales, saleLabel, waitInQueue } from "/console/queue.js";

const form = document.getElementById("search");
const message = document.getElementById("message");
const list = document.getElementById("trains");
let last = null; // the search shown: done again when the signed-in user changes
let stopQueue = () => {};

async function suggestStations(date) {
  // the timetable of the date (first page of up to 1000 routes): its station names
  const res = await api(`/v1/routes?date=${encodeURIComponent(date)}&limit=1000`);
  const names = new Set();
  if (res.ok) for (const r of res.body.routes) for (const s of r.stations) names.add(s);
  document.getElementById("stations").replaceChildren(...[...names].sort().map((n) => el("option", { value: n })));
}

function seatMapLink(train, from, to) {
  const q = new URLSearchParams({ from, to });
  return `/routes/${encodeURIComponent(train.route_id)}?${q}`;
}

function queueFor(train, sale, link) {
  const stop = tokenProblem();
  if (stop) return say(message, stop);
  stopQueue();
  const section = document.getElementById("queue-section");
  document.getElementById("queue-title").textContent = `Queue for ${train.train}`;
  section.hidden = false;
  stopQueue = waitInQueue(document.getElementById("queue"), sale,
    { message, seatMap: link, onAdmitted: () => location.assign(link) });
  section.scrollIntoView({ block: "nearest" });
}

function seatsLink(train, sale, from, to) {
  const href = seatMapLink(train, from, to);
  // a train in a sale is booked with an admission from its queue: queue first
  const queue = sale && !admissionFor(sale.sale_id);
  const pick = queue ? (e) => { e.preventDefault(); queueFor(train, sale, href); } : null;
  const text = !queue ? "Seats →" : sale.state === "sold-out" ? "Waitlist →" : "Queue for seats →";
  return el("a", { href, "data-seat-map": train.route_id, onclick: pick }, text);
}

async function search(from, to, date) {
  say(message, "");
  last = { from, to, date };
  const q = new URLSearchParams({ from, to, date });
  // sales are listed to signed-in users only; anyone else meets the queue on the seat map
  const [res, sales] = await Promise.all([api(`/v1/search?${q}`), getToken() ? liveSales() : new Map()]);
  const section = document.getElementById("results");
  if (!res.ok) {
    section.hidden = true;
    say(message, explain(res));
    return;
  }
  document.getElementById("results-title").textContent = `Trains on ${date} from ${from} to ${to}`;
  section.hidden = false;
  if (!res.body.trains.length) {
    list.replaceChildren(el("li", {}, "No train of that date goes from there to there."));
    return;
  }
  list.replaceChildren(...res.body.trains.map((t) => {
    const times = t.departure ? `${t.departure} → ${t.arrival || "?"}` : "";
    const sale = sales.get(t.route_id);
    return el("li", { "data-route-id": t.route_id },
      el("span", { class: "train" }, t.train),
      el("span", { class: "times" }, times),
      el("span", { class: "classes" }, Object.entries(t.availability).map(([k, n]) =>
        el("span", { class: "count" }, `${k} `, el("b", { "data-class": k }, n)))),
      sale ? el("span", { class: "sale", "data-sale-id": sale.sale_id, "data-sale-state": sale.state }, saleLabel(sale)) : null,
      seatsLink(t, sale, from, to));
  }));
}

function fromUrl() {
  const p = new URLSearchParams(location.search);
  const date = p.get("date") || today();
  form.elements.date.value = date;
  if (p.get("from")) form.elements.from.value = p.get("from");
  if (p.get("to")) form.elements.to.value = p.get("to");
  return { from: p.get("from"), to: p.get("to"), date };
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const from = form.elements.from.value.trim();
  const to = form.elements.to.value.trim();
  const date = form.elements.date.value;
  history.replaceState(null, "", `/?${new URLSearchParams({ from, to, date })}`);
  search(from, to, date);
});
form.elements.date.addEventListener("change", () => suggestStations(form.elements.date.value));

const mine = () => showBookings(document.getElementById("mine-section"), document.getElementById("mine"), message);
signIn(document.getElementById("signin"), () => {
  mine();
  if (last) search(last.from, last.to, last.date); // sales are shown to signed-in users
});
const start = fromUrl();
suggestStations(start.date);
if (start.from && start.to) search(start.from, start.to, start.date);
if (getToken()) mine();
