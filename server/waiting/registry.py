"""Which sales exist, and which sale each route is in: kept in Redis for every front end.

A route is in at most one sale that is not closed: its bookings are gated by that sale's
admissions, and two sales gating one route would each admit people the other refuses.
Creating a sale claims its routes in one script (all or none); closing it frees them.
The sale's queue (`store.py`) lives under the sale's own hash tag and is created right
after; `QueueStore.create` leaves an existing queue alone, so a retry completes it.
"""

from __future__ import annotations

import datetime as dt
import secrets

import msgspec
import redis
import redis.asyncio as aredis

from actors.storage import keys
from server.waiting.policy import CLOSED, SCHEDULED
from server.waiting.sales import BadSale, SaleIn
from server.waiting.store import QueueStore

#: KEYS: sales, sale of route, route definitions. ARGV: sale id, definition, routes...
_CREATE = """
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then
    return redis.error_reply('NOROUTE ' .. ARGV[i])
  end
  local other = redis.call('HGET', KEYS[2], ARGV[i])
  if other then return redis.error_reply('BUSY ' .. ARGV[i] .. ' ' .. other) end
end
for i = 3, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: sale of route. ARGV: sale id, routes... (only the routes still this sale's)
_FREE = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 1
"""


class Sale(msgspec.Struct, frozen=True):
    """A sale's definition as kept (its state lives with its queue)."""

    sale_id: str
    routes: list[str]
    opens_at: dt.datetime
    admit_per_second: float | None


_decode = msgspec.json.Decoder(Sale).decode


class NoSuchRoute(BadSale):
    pass


class RouteInSale(BadSale):
    """A route of the new sale is in another sale that is not closed."""


class SaleRegistry:
    """Sales in Redis: create, read, close."""

    def __init__(self, client: aredis.Redis, lean_url: str | None = None) -> None:
        self.client = client
        self.queues = QueueStore(client, lean_url)
        self._create = client.register_script(_CREATE)
        self._free = client.register_script(_FREE)

    async def create(self, sale: SaleIn) -> Sale:
        """Keep a new sale, claiming its routes; NoSuchRoute or RouteInSale if it cannot."""
        made = Sale(f"S{secrets.token_hex(8)}", list(sale.routes), sale.opens_at,
                    sale.admit_per_second)  # fmt: skip
        args: list[str | bytes] = [made.sale_id, msgspec.json.encode(made), *made.routes]
        try:
            await self._create(keys=[keys.SALES, keys.SALE_OF_ROUTE, keys.ROUTES], args=args)
        except redis.ResponseError as exc:
            reason, _, rest = str(exc).partition(" ")
            if reason == "NOROUTE":
                raise NoSuchRoute(f"There is no route {rest}; create it first.") from None
            if reason == "BUSY":
                route, _, other = rest.partition(" ")
                raise RouteInSale(
                    f"Route {route} is in sale {other}; close that sale first."
                ) from None
            raise
        await self.queues.create(made.sale_id, SCHEDULED, made.opens_at.timestamp())
        return made

    async def get(self, sale_id: str) -> Sale | None:
        raw = await self.client.hget(keys.SALES, sale_id)
        return None if raw is None else _decode(raw)

    async def all(self) -> dict[str, Sale]:
        """Every sale, closed ones included (a front end refreshes them a few times a
        second: they are few)."""
        raw = await self.client.hgetall(keys.SALES)
        return {sale.sale_id: sale for sale in (_decode(v) for v in raw.values())}

    async def replace(self, sale: Sale) -> None:
        """Keep a changed definition (its rate: the routes never change)."""
        await self.client.hset(keys.SALES, sale.sale_id, msgspec.json.encode(sale))

    async def close(self, sale: Sale) -> None:
        """Close the sale for good and free its routes for another."""
        await self.queues.set_state(sale.sale_id, CLOSED)
        await self._free(keys=[keys.SALE_OF_ROUTE], args=[sale.sale_id, *sale.routes])

    async def sale_of(self, route_id: str) -> str | None:
        """The sale (not closed) the route is in, if any."""
        raw = await self.client.hget(keys.SALE_OF_ROUTE, route_id)
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)
