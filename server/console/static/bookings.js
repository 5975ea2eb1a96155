// "My bookings": the signed-in user's own bookings, with pay and cancel.
import { api, el, explain, getToken, say, tokenProblem } from "/console/common.js";

/** Pay (confirm) or cancel one booking; calls done() after a success. */
export async function act(booking, action, message, done) {
  const stop = tokenProblem();
  if (stop) return say(message, stop);
  const path = `/v1/bookings/${encodeURIComponent(booking.booking_id)}`;
  const res = action === "pay"
    ? await api(`${path}/confirm`, { method: "POST", auth: true })
    : await api(path, { method: "DELETE", auth: true });
  if (!res.ok) return say(message, explain(res));
  say(message, `Booking ${res.body.booking_id} is ${res.body.status}.`, "ok");
  done(res.body);
}

export function describe(b) {
  const seats = b.seats.map((s) => `${s.coach}-${s.seat}`).join(", ") || "no seat yet";
  return `${b.route_id} · ${b.from} → ${b.to} · ${b.class} · ${seats}`;
}

/** Render the user's bookings into `box` (hiding `section` when signed out). */
export async function showBookings(section, box, message, onChange = () => {}) {
  if (!getToken()) {
    section.hidden = true;
    return;
  }
  const res = await api("/v1/bookings?limit=20", { auth: true });
  section.hidden = false;
  if (!res.ok) {
    box.replaceChildren(el("p", { class: "hint" }, explain(res)));
    return;
  }
  if (!res.body.bookings.length) {
    box.replaceChildren(el("p", { class: "hint" }, "No bookings yet."));
    return;
  }
  const again = () => { showBookings(section, box, message, onChange); onChange(); };
  box.replaceChildren(...res.body.bookings.map((b) => el("div", { class: "booking", "data-booking-id": b.booking_id, "data-status": b.status },
    el("span", { class: "status" }, b.status),
    el("span", {}, describe(b)),
    b.status === "held" ? el("button", { type: "button", "data-action": "pay", onclick: () => act(b, "pay", message, again) }, "Pay") : null,
    ["held", "confirmed", "waitlisted"].includes(b.status)
      ? el("button", { type: "button", class: "quiet", "data-action": "cancel", onclick: () => act(b, "cancel", message, again) }, "Cancel")
      : null)));
}
