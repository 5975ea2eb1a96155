"""Live progress on the terminal while load runs: rate, status mix, p99 so far, seats left."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from loadgen.client import Reply, TicketdClient
from loadgen.driver import Driver
from loadgen.routes import route_id
from loadgen.wire import Availability, RouteDef, decode

REFRESH_S = 0.25
POLL_S = 1.0


async def seats_left(client: TicketdClient, route: RouteDef) -> dict[str, int] | None:
    """Seats per class still bookable end to end, or None if availability did not answer."""
    answer = await client.availability(route_id(route), route.stations[0], route.stations[-1])
    if not isinstance(answer, Reply) or not answer.ok:
        return None
    reply = decode(answer.body, Availability)
    return None if reply is None else dict(reply.availability)


class Progress:
    """Redraws a small panel four times a second until cancelled."""

    def __init__(self, driver: Driver, duration: float, console: Console | None = None) -> None:
        self.driver = driver
        self.duration = duration
        self.console = console or Console()
        self.seats: dict[str, dict[str, int] | None] = {}

    async def run(self, control: TicketdClient, routes: Sequence[RouteDef]) -> None:
        """Show progress (and poll availability on `control`) until cancelled."""
        poller = asyncio.create_task(self._poll(control, routes))
        try:
            with Live(self._render(), console=self.console, auto_refresh=False) as live:
                try:
                    while True:
                        await asyncio.sleep(REFRESH_S)
                        live.update(self._render(), refresh=True)
                finally:
                    live.update(self._render(), refresh=True)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    async def _poll(self, control: TicketdClient, routes: Sequence[RouteDef]) -> None:
        while True:
            for route in routes:
                self.seats[route_id(route)] = await seats_left(control, route)
            await asyncio.sleep(POLL_S)

    def _render(self) -> Group:
        driver, stats = self.driver, self.driver.stats
        now = asyncio.get_running_loop().time()
        elapsed = min(now - stats.start, self.duration)
        head = Table.grid(padding=(0, 2))
        for _ in range(6):
            head.add_column(justify="right")
        head.add_row(
            "elapsed",
            "req/s",
            "requests",
            "in flight",
            "p99 so far",
            "acknowledged",
        )
        head.add_row(
            f"{elapsed:5.1f}/{self.duration:g} s",
            f"{stats.recent_rate(now):,.0f}",
            f"{stats.requests:,}",
            f"{driver.in_flight}",
            f"{stats.latency().p99:,.1f} ms",
            f"{driver.ledger.acknowledged:,}",
        )
        mix = Text("status  ", style="bold")
        for key, count in stats.status.most_common(6):
            style = "green" if key.startswith("2") else "yellow" if key[0] in "45" else "red"
            mix.append(f"{key} ×{count:,}  ", style=style)
        seats = Text("seats left  ", style="bold")
        for rid, left in self.seats.items():
            shown = "?" if left is None else f"{sum(left.values()):,}"
            seats.append(f"{rid}: {shown}  ")
        return Group(head, mix, seats)
