"""The web console in a real headless Chromium against a real ticketd: buy a picked seat,
see it taken from a second session, cancel, see it free; refusals without a valid token;
the operator page during a loadgen sale."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import JWT_SECRET
from console_live import browser, css, serve, sign_in, wait
from support.http import DATE, route_body

from server.api.auth import mint

REPO = Path(__file__).resolve().parents[2]
#: how long a page may take to show a change (it polls every second; a shared 2-core
#: machine is slow at times)
#: a route's first seat map activates its actor: a Ray worker process start
ACTIVATION = 60.0


@pytest.fixture(scope="module")
def live_url(redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    with serve(redis_url, tmp_path_factory.mktemp("console-data")) as url:
        yield url


def _message(driver: Any) -> str:
    text: str = css(driver, "#message").text
    return text


def _state(driver: Any, seat: str) -> str:
    state: str = css(driver, f'[data-seat="{seat}"]').get_attribute("data-state")
    return state


def test_search_pick_book_pay_seen_taken_elsewhere_cancel_free_again(live_url: str) -> None:
    admin = {"Authorization": f"Bearer {mint(JWT_SECRET, 'ops', True)}"}
    train = f"W{time.time_ns() % 10**9}"
    r = httpx.post(live_url + "/v1/routes", json=route_body(train), headers=admin)
    assert r.status_code == 201, r.text
    rid = r.json()["route_id"]
    seat_map = f"{live_url}/routes/{rid}?from=A&to=C"
    with browser() as alice, browser(390, 844) as bob:  # bob on a phone-width window
        sign_in(alice, live_url, mint(JWT_SECRET, "alice"))
        alice.get(f"{live_url}/?from=A&to=C&date={DATE}")
        counts = wait(
            "the train with its seats",
            lambda: css(alice, f'[data-route-id="{rid}"] [data-class="second"]'),
        )
        assert counts.text == "4"
        css(alice, f'[data-seat-map="{rid}"]').click()
        wait("the seat map", lambda: _state(alice, "02-01A") == "free", ACTIVATION)
        bob.get(seat_map)
        wait("bob's seat map", lambda: _state(bob, "02-01A") == "free")

        css(alice, '[data-seat="02-01A"]').click()
        css(alice, "#passengers [name=name]").send_keys("Li Lei")
        css(alice, "#passengers [name=pid]").send_keys("110101199001011234")
        css(alice, "#book-button").click()
        wait("the hold", lambda: "Held" in _message(alice))
        css(alice, '#held [data-action="pay"]').click()
        wait("the payment", lambda: "confirmed" in _message(alice))
        assert _state(alice, "02-01A") == "taken"
        # bob's page refreshes by itself: no reload
        wait("the seat taken in bob's session", lambda: _state(bob, "02-01A") == "taken")
        # taken from A to C, and free after C on the same seat
        seats = httpx.get(f"{live_url}/v1/routes/{rid}/seats?from=C&to=D").json()
        assert all(c["taken"] == [] for c in seats["coaches"])

        wait("my bookings", lambda: css(alice, '#mine [data-status="confirmed"]'))
        css(alice, '#mine [data-status="confirmed"] [data-action="cancel"]').click()
        wait("the cancel", lambda: "cancelled" in _message(alice))
        wait("the seat free again for bob", lambda: _state(bob, "02-01A") == "free")


def test_without_a_valid_token_the_page_says_what_to_do_and_books_nothing(live_url: str) -> None:
    admin = {"Authorization": f"Bearer {mint(JWT_SECRET, 'ops', True)}"}
    r = httpx.post(live_url + "/v1/routes", json=route_body(f"X{time.time_ns() % 10**9}"),
                   headers=admin)  # fmt: skip
    rid = r.json()["route_id"]
    tokens = [
        ("", "make token"),
        (mint(JWT_SECRET, "carol", ttl=-60), "expired"),
        (mint("another-secret-0123456789abcdef-0123456789", "carol"), "refused"),
    ]
    with browser() as carol:
        for token, sentence in tokens:
            if token:
                sign_in(carol, live_url, token)
            carol.get(f"{live_url}/routes/{rid}?from=A&to=B")
            wait("the seat map", lambda: _state(carol, "02-01A") == "free", ACTIVATION)
            css(carol, '[data-seat="02-01A"]').click()
            css(carol, "#passengers [name=name]").send_keys("Han Meimei")
            css(carol, "#passengers [name=pid]").send_keys("110101199202022345")
            css(carol, "#book-button").click()
            wait(f"the sentence with {sentence!r}", lambda s=sentence: s in _message(carol))
        assert _state(carol, "02-01A") == "free"
        carol.get(f"{live_url}/ops")
        wait("the ops page refusing", lambda: "token" in _message(carol))
    listed = httpx.get(f"{live_url}/v1/routes/{rid}/bookings", headers=admin).json()
    assert listed["bookings"] == []


def test_operator_page_follows_a_loadgen_sale(live_url: str, tmp_path: Path) -> None:
    with browser() as ops:
        sign_in(ops, live_url, mint(JWT_SECRET, "ops", True))
        ops.get(f"{live_url}/ops")
        wait("the operator page", lambda: css(ops, "#chart").get_attribute("data-points"))
        before = int(css(ops, "#chart").get_attribute("data-booked"))
        sale = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "--url", live_url, "--jwt-secret", JWT_SECRET,
             "--scenario", "flash-sale", "--duration", "6", "--concurrency", "16", "--routes",
             "2", "--seats", "300", "--no-progress", "--report", str(tmp_path / "sale.json")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def booked() -> int:
            return int(css(ops, "#chart").get_attribute("data-booked"))

        def nodes() -> list[str]:
            rows = ops.find_elements("css selector", "#actors [data-node]")
            return [row.get_attribute("data-node") for row in rows]

        try:
            wait("the sales curve moving", lambda: booked() > before, 30)
            assert all(wait("route actors with their nodes", nodes))
            assert css(ops, '[data-stat="batch-mean"] b').text not in ("", "–")
        finally:
            out, _ = sale.communicate(timeout=120)
        assert sale.returncode == 0, out.decode(errors="replace")[-2000:]
