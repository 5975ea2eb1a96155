"""The console's waiting-room views in a real headless Chromium against a real ticketd: a
buyer queues before a sale opens, is admitted and books with the admission; the operator
sees a sale's queue and pauses and resumes it; a sold-out sale says so and offers its
waitlist."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import JWT_SECRET
from console_live import browser, css, serve, sign_in, wait
from support.http import DATE, coach, route_body
from support.sales import sale_body

from server.api.auth import mint

#: how long a page may take to show a change (the operator page polls every 2 s; a
#: shared 2-core machine is slow at times)
#: a route's first seat map activates its actor: a Ray worker process start
ACTIVATION = 60.0
ADMIN = {"Authorization": f"Bearer {mint(JWT_SECRET, 'ops', True)}"}


@pytest.fixture(scope="module")
def live_url(redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    with serve(redis_url, tmp_path_factory.mktemp("console-sales-data")) as url:
        yield url


def _route(url: str, body: dict[str, Any]) -> str:
    r = httpx.post(url + "/v1/routes", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def _sale(url: str, routes: list[str], opens_in: float, rate: float) -> str:
    r = httpx.post(url + "/v1/sales", json=sale_body(routes, opens_in, rate), headers=ADMIN)
    assert r.status_code == 201, r.text
    sale_id: str = r.json()["sale_id"]
    return sale_id


def _sale_state(url: str, sale_id: str) -> str:
    state: str = httpx.get(f"{url}/v1/sales/{sale_id}", headers=ADMIN).json()["state"]
    return state


def _search(driver: Any, url: str, found: str) -> None:
    """The buyer page's search from A to C until `found` shows: a front end's timetable
    answers at once and takes in a route made meanwhile for the next search."""
    driver.get(f"{url}/?from=A&to=C&date={DATE}")
    searched = [time.monotonic()]

    def shown() -> Any:
        try:
            return css(driver, found)
        except Exception:
            if time.monotonic() - searched[-1] > 0.5:
                css(driver, "#search button[type=submit]").click()
                searched.append(time.monotonic())
            raise

    wait(f"{found} in the search", shown)


def _book(driver: Any, passenger: str, pid: str) -> None:
    css(driver, "#passengers [name=name]").send_keys(passenger)
    css(driver, "#passengers [name=pid]").send_keys(pid)
    css(driver, "#book-button").click()


_QUEUE_VIEW = """
const view = document.querySelector("[data-queue-state]");
if (!view) return null;
const text = (hook) => view.querySelector(`[${hook}]`).textContent;
const bar = view.querySelector("progress[data-queue-progress]").position;  // -1: not started
return [view.dataset.queueState, text("data-queue-place"), text("data-queue-ahead"), bar];
"""


def _follow_queue(driver: Any) -> list[tuple[str, str, str, float]]:
    """(state, place, ahead, progress) as the queue view shows them, each change once, until
    the page moves on to the seat map."""
    seen: list[tuple[str, str, str, float]] = []
    deadline = time.monotonic() + 30
    while "/routes/" not in driver.current_url:
        assert time.monotonic() < deadline, f"never left the queue; saw {seen}"
        try:  # in one script: the page never shows half an answer
            now = driver.execute_script(_QUEUE_VIEW)
        except Exception:  # the page is leaving
            now = None
        if now and (not seen or seen[-1] != tuple(now)):
            seen.append(tuple(now))
        time.sleep(0.05)
    return seen


def test_a_buyer_queues_before_the_opening_is_admitted_and_books_with_the_admission(
    live_url: str,
) -> None:
    rid = _route(live_url, route_body(f"Q{time.time_ns() % 10**9}"))
    with browser() as buyer:
        sign_in(buyer, live_url, mint(JWT_SECRET, "quinn"))
        _search(buyer, live_url, f'[data-route-id="{rid}"] [data-class="second"]')
        # one admission a second: alone in the queue, place 1 waits about a second
        sid = _sale(live_url, [rid], opens_in=2.0, rate=1.0)
        _search(buyer, live_url, f'[data-route-id="{rid}"] [data-sale-id="{sid}"]')
        css(buyer, f'[data-seat-map="{rid}"]').click()
        seen = _follow_queue(buyer)
        assert seen == [("not-open", "–", "–", -1), ("waiting", "1", "0", 0),
                        ("admitted", "1", "0", 1)], seen  # fmt: skip

        wait("the seat map", lambda: css(buyer, '[data-seat="02-01A"]').get_attribute(
            "data-state") == "free", ACTIVATION)  # fmt: skip
        assert css(buyer, "#admission-hint").is_displayed()
        assert not css(buyer, "#queue-section").is_displayed()
        css(buyer, '[data-seat="02-01A"]').click()
        _book(buyer, "Qian Qi", "110101199303033456")
        wait("the hold", lambda: "Held" in css(buyer, "#message").text)
    listed = httpx.get(f"{live_url}/v1/routes/{rid}/bookings", headers=ADMIN).json()["bookings"]
    assert [(b["user"], b["status"], b["seats"][0]["seat"]) for b in listed] == [
        ("quinn", "held", "01A")
    ]
    # the route is gated: what let the page book was the admission it sent
    other = {"Authorization": f"Bearer {mint(JWT_SECRET, 'rita')}", "Idempotency-Key": "rita-1"}
    trip = {"from": "A", "to": "C", "class": "second",
            "passengers": [{"name": "Rita", "id": "110101199404044567"}]}  # fmt: skip
    r = httpx.post(f"{live_url}/v1/routes/{rid}/bookings", json=trip, headers=other)
    assert r.status_code == 403 and r.json()["type"] == "not-admitted", r.text


def test_the_operator_sees_a_sale_s_queue_and_pauses_and_resumes_it(live_url: str) -> None:
    rid = _route(live_url, route_body(f"P{time.time_ns() % 10**9}"))
    with browser() as ops:
        sign_in(ops, live_url, mint(JWT_SECRET, "ops", True))
        ops.get(f"{live_url}/ops")
        wait("the operator page", lambda: css(ops, "#rooms").is_displayed())
        sid = _sale(live_url, [rid], opens_in=0.0, rate=5.0)
        for user in ("olga", "oleg"):
            auth = {"Authorization": f"Bearer {mint(JWT_SECRET, user)}"}
            assert httpx.post(f"{live_url}/v1/sales/{sid}/queue", headers=auth).status_code == 200
        row = f'#rooms [data-sale-id="{sid}"]'

        def stat(key: str) -> str:
            text: str = css(ops, f'{row} [data-sale-stat="{key}"]').text
            return text

        wait("both admitted", lambda: stat("admitted") == "2")
        assert (stat("state"), stat("joined"), stat("waiting"), stat("seats-left")) == (
            "open", "2", "0", "6"
        )  # fmt: skip
        assert float(stat("rate")) > 0  # measured over the last 10 s: two admitted just now

        css(ops, f'{row} [data-action="pause"]').click()
        wait("the sale paused", lambda: stat("state") == "paused")
        assert css(ops, row).get_attribute("data-sale-state") == "paused"
        assert _sale_state(live_url, sid) == "paused"
        css(ops, f'{row} [data-action="resume"]').click()
        wait("the sale open again", lambda: stat("state") == "open")
        assert _sale_state(live_url, sid) == "open"


def test_a_sold_out_sale_says_so_and_offers_its_waitlist(live_url: str) -> None:
    one_seat = route_body(f"S{time.time_ns() % 10**9}", coaches=[coach("01", "second", 1, "A")])
    rid = _route(live_url, one_seat)
    early = {"Authorization": f"Bearer {mint(JWT_SECRET, 'early')}", "Idempotency-Key": "e-1"}
    trip = {"from": "A", "to": "D", "class": "second",
            "passengers": [{"name": "Early", "id": "110101199505055678"}]}  # fmt: skip
    r = httpx.post(f"{live_url}/v1/routes/{rid}/bookings", json=trip, headers=early,
                   timeout=ACTIVATION)  # fmt: skip
    assert r.status_code == 201, r.text
    sid = _sale(live_url, [rid], opens_in=0.0, rate=5.0)
    wait("the sale sold out", lambda: _sale_state(live_url, sid) == "sold-out")
    with browser() as buyer:
        sign_in(buyer, live_url, mint(JWT_SECRET, "sam"))
        _search(buyer, live_url, f'[data-route-id="{rid}"] [data-sale-state="sold-out"]')
        css(buyer, f'[data-seat-map="{rid}"]').click()
        wait("the sold-out answer", lambda: css(buyer, '[data-queue-state="sold-out"]'))
        assert "sold out" in css(buyer, "[data-queue-sentence]").text
        css(buyer, "[data-queue-waitlist]").click()
        wait("the seat map", lambda: css(buyer, '[data-seat="01-01A"]').get_attribute(
            "data-state") == "taken")  # fmt: skip
        assert "waitlist" in css(buyer, "#admission-hint").text
        _book(buyer, "Sam Shi", "110101199606066789")
        wait("on the waitlist", lambda: "waitlist" in css(buyer, "#message").text)
    listed = httpx.get(f"{live_url}/v1/routes/{rid}/bookings", headers=ADMIN).json()["bookings"]
    assert sorted((b["user"], b["status"]) for b in listed) == [
        ("early", "held"), ("sam", "waitlisted")
    ]  # fmt: skip
