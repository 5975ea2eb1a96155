"""The sale endpoints on top of loadgen's TicketdClient (one keep-alive aiohttp session)."""

from __future__ import annotations

from urllib.parse import quote

from loadgen.client import Answer, TicketdClient
from loadgen.waiting.wire import SalePatch, SaleRequest
from loadgen.wire import BookingRequest, encode


class SaleClient(TicketdClient):
    """TicketdClient plus `/v1/sales`: create, read and close a sale, join and poll its queue,
    book with an Admission header."""

    async def create_sale(self, sale: SaleRequest) -> Answer:
        """POST /v1/sales as admin."""
        return await self._call("POST", "/v1/sales", token=self.tokens.admin, body=encode(sale))

    async def sale(self, sale_id: str) -> Answer:
        """GET /v1/sales/{sale_id} as admin."""
        return await self._call("GET", f"/v1/sales/{_seg(sale_id)}", token=self.tokens.admin)

    async def close_sale(self, sale_id: str) -> Answer:
        """PATCH /v1/sales/{sale_id} to closed, as admin: its routes are free again."""
        body = encode(SalePatch(state="closed"))
        path = f"/v1/sales/{_seg(sale_id)}"
        return await self._call("PATCH", path, token=self.tokens.admin, body=body)

    async def join(self, sale_id: str, user: str) -> Answer:
        """POST /v1/sales/{sale_id}/queue as `user`."""
        path = f"/v1/sales/{_seg(sale_id)}/queue"
        return await self._call("POST", path, token=self.tokens.user(user))

    async def poll(self, sale_id: str, user: str, ticket: str | None) -> Answer:
        """GET /v1/sales/{sale_id}/queue as `user`, with the `Queue-Ticket` last given."""
        path = f"/v1/sales/{_seg(sale_id)}/queue"
        headers = {"Queue-Ticket": ticket} if ticket else None
        return await self._call("GET", path, token=self.tokens.user(user), headers=headers)

    async def book_admitted(
        self, route_id: str, user: str, request: BookingRequest, key: str, admission: str | None
    ) -> Answer:
        """POST /v1/routes/{route_id}/bookings with `Admission: admission` (none if None)."""
        headers = {"Idempotency-Key": key}
        if admission is not None:
            headers["Admission"] = admission
        return await self._call(
            "POST",
            f"/v1/routes/{_seg(route_id)}/bookings",
            token=self.tokens.user(user),
            body=encode(request),
            headers=headers,
        )


def _seg(value: str) -> str:
    return quote(value, safe="")
