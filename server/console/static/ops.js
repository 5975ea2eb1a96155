// The operator page: polls the admin JSON (never /metrics) and draws the open sale.
import { api, claims, el, explain, say, signIn, today, tokenProblem } from "/console/common.js";
import { drawRooms } from "/console/rooms.js";

const POLL_MS = 2000;
const SECONDS = 120; // the curve's window: the last two minutes
const message = document.getElementById("message");
const dateInput = document.getElementById("date");
const sections = ["sales-section", "rooms-section", "frontend-section", "routes-section", "actors-section"];
let timer = null;

const fmt = (x, unit = "") => (x === null || x === undefined ? "–" : `${x}${unit}`);

function show(visible) {
  for (const id of sections) document.getElementById(id).hidden = !visible;
}

function path(points, value, max, width, height) {
  if (!points.length) return "";
  const step = width / Math.max(points.length - 1, 1);
  return points.map((p, i) => `${i ? "L" : "M"}${(i * step).toFixed(1)},${(height - (value(p) / max) * (height - 14) - 2).toFixed(1)}`).join(" ");
}

function chart(sales) {
  const svg = document.getElementById("chart");
  const pts = sales.points;
  const maxRate = Math.max(1, ...pts.map((p) => p.bookings));
  const maxLeft = Math.max(1, ...pts.map((p) => p.seats_left));
  const ns = "http://www.w3.org/2000/svg";
  const line = (cls, d) => { const n = document.createElementNS(ns, "path"); n.setAttribute("class", cls); n.setAttribute("d", d); return n; };
  const text = (x, y, t) => { const n = document.createElementNS(ns, "text"); n.setAttribute("x", x); n.setAttribute("y", y); n.textContent = t; return n; };
  const axis = document.createElementNS(ns, "line");
  for (const [k, v] of Object.entries({ class: "axis", x1: 0, y1: 178, x2: 600, y2: 178 })) axis.setAttribute(k, v);
  svg.replaceChildren(axis,
    line("booked", path(pts, (p) => p.bookings, maxRate, 600, 180)),
    line("left", path(pts, (p) => p.seats_left, maxLeft, 600, 180)),
    text(4, 10, `${maxRate}/s`), text(530, 10, `${maxLeft} seats`),
    text(4, 174, `−${pts.length} s`), text(580, 174, "now"));
  svg.dataset.points = String(pts.length);
  svg.dataset.booked = String(pts.reduce((a, p) => a + p.bookings, 0));
  document.getElementById("max-rate").textContent = String(maxRate);
  document.getElementById("seats-left").textContent = String(pts.length ? pts[pts.length - 1].seats_left : 0);
  document.getElementById("window").textContent = `${pts.length} seconds`;
}

function tiles(f) {
  const tile = (label, value, key) => el("div", { class: "tile", "data-stat": key }, el("b", {}, value), el("span", {}, label));
  document.getElementById("tiles").replaceChildren(
    tile("requests / s", fmt(f.requests_per_second), "rps"),
    tile("mean batch size", fmt(f.batch_size_mean), "batch-mean"),
    tile("p99 batch size ≤", fmt(f.batch_size_p99), "batch-p99"),
    tile("queue depth now", fmt(f.queue_depth), "queue"),
    tile("p99 latency ≤", fmt(f.latency_p99_ms, " ms"), "p99"),
    tile("p99 booking ≤", fmt(f.booking_p99_ms, " ms"), "book-p99"),
    tile("503 share", `${(f.unavailable_rate * 100).toFixed(2)} %`, "503"));
}

function rows(tbody, items, cells) {
  tbody.replaceChildren(...items.map((x) => el("tr", cells.attrs(x), ...cells.values(x).map((v) => el("td", {}, fmt(v))))));
}

async function poll() {
  const stop = tokenProblem();
  if (stop) {
    show(false);
    return say(message, stop);
  }
  const date = dateInput.value || today();
  const [sales, rooms, front, routes, actors] = await Promise.all([
    api(`/v1/admin/sales?seconds=${SECONDS}`, { auth: true }),
    api("/v1/sales", { auth: true }),
    api("/v1/admin/frontend", { auth: true }),
    api(`/v1/admin/routes?date=${encodeURIComponent(date)}`, { auth: true }),
    api("/v1/admin/actors", { auth: true }),
  ]);
  const failed = [sales, rooms, front, routes, actors].find((r) => !r.ok);
  if (failed && (failed.status === 401 || failed.status === 403)) {
    show(false);
    return say(message, explain(failed));
  }
  say(message, failed ? explain(failed) : "");
  show(true);
  if (sales.ok) chart(sales.body);
  if (rooms.ok) drawRooms(document.querySelector("#rooms tbody"), rooms.body.sales, message, poll);
  if (front.ok) tiles(front.body);
  if (routes.ok) {
    rows(document.querySelector("#routes tbody"), routes.body.routes, {
      attrs: (r) => ({ "data-route-id": r.route_id }),
      values: (r) => [r.route_id, r.seats, r.sold, r.held, r.waitlisted, r.free, r.active ? "running" : "idle"],
    });
  }
  if (actors.ok) {
    rows(document.querySelector("#actors tbody"), actors.body.actors, {
      attrs: (a) => ({ "data-actor": a.route_id, "data-node": a.node }),
      values: (a) => [a.route_id, a.node, a.pid, a.epoch, `${Math.round(a.recovery_seconds * 1000)} ms`, a.events_applied, a.batches, a.state],
    });
  }
}

function restart() {
  clearInterval(timer);
  const c = claims();
  if (c && c.role !== "admin") {
    show(false);
    return say(message, "This page needs an admin token (`make token ADMIN=1`); you are signed in without the admin role.");
  }
  poll();
  timer = setInterval(() => { if (!document.hidden) poll(); }, POLL_MS);
}

dateInput.value = new URLSearchParams(location.search).get("date") || today();
dateInput.addEventListener("change", poll);
signIn(document.getElementById("signin"), restart);
restart();
