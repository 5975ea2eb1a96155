"""The `/v1/sales` resource: a sale and its waiting room (server/waiting/).

An operator opens a sale on some routes at a time; buyers join its queue and poll it;
the one admitted gets a signed admission to book with. Polls are answered from the front
end's memory and the caller's signed ticket, joins are coalesced per loop turn.
"""

from __future__ import annotations

import datetime as dt
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from actors.domain.route import is_route_id
from server.api import query
from server.api.common import Guard, endpoint, json_response, raw_headers, read_json
from server.api.problems import Problem, problem_response
from server.api.schemas import QueueOut, SaleList, SaleOut
from server.api.services import Services, services
from server.waiting import policy, sales
from server.waiting.registry import NoSuchRoute, RouteInSale, Sale
from server.waiting.room import Answer, PollTooSoon, WaitingRoom
from server.waiting.sales import BadSale, SaleIn, SalePatch

_sale_in = msgspec.json.Decoder(SaleIn)
_sale_patch = msgspec.json.Decoder(SalePatch)


def _room(request: Request) -> WaitingRoom:
    room: WaitingRoom = request.app.state.services.room
    return room


def _out(room: WaitingRoom, sale: Sale, now: float) -> SaleOut:
    """The sale as this front end knows it: every figure from memory, no I/O."""
    figures = room.figures.get(sale.sale_id)
    return SaleOut(
        sale.sale_id, sale.routes, sale.opens_at.isoformat(), room.state(sale.sale_id, now),
        sale.admit_per_second, figures.queued if figures else 0,
        figures.frontier if figures else 0, figures.joins if figures else 0,
        room.seats_left.get(sale.sale_id), round(room.rate(sale.sale_id), 2),
    )  # fmt: skip


async def _sale(room: WaitingRoom, sale_id: str) -> Sale:
    sale = room.sales.get(sale_id) or await room.registry.get(sale_id)
    if sale is None:
        raise Problem("not-found", f"There is no sale {sale_id}.")
    room.sales.setdefault(sale_id, sale)
    return sale


@endpoint("create_sale")
async def create_sale(request: Request) -> Response:
    svc = services(request)
    svc.auth.admin(request.headers.get("authorization"))
    body = await read_json(request, _sale_in)
    now = time.time()
    try:
        sale = await svc.room.registry.create(sales.check(body, dt.datetime.now(dt.UTC)))
    except NoSuchRoute as exc:
        raise Problem("not-found", str(exc)) from None
    except RouteInSale as exc:
        raise Problem("sale-conflict", str(exc)) from None
    except BadSale as exc:
        raise Problem("validation", str(exc)) from None
    await svc.room.refresh()  # this front end gates the routes at once
    return json_response(_out(svc.room, sale, now), 201)


@endpoint("list_sales")
async def list_sales(request: Request) -> Response:
    """Every sale (closed ones too), from memory: the keeper reads them all anyway."""
    svc = services(request)
    svc.auth.user(request.headers.get("authorization"))
    route = query.params(request, ("route",)).get("route")
    if route is not None and not is_route_id(route):
        raise Problem("validation", f"{route!r} is not a route id; give one like G101-20261201.")
    room, now = svc.room, time.time()
    found = [s for s in list(room.sales.values()) if route is None or route in s.routes]
    found.sort(key=lambda s: (s.opens_at, s.sale_id), reverse=True)
    return json_response(SaleList([_out(room, s, now) for s in found]))


@endpoint("get_sale")
async def get_sale(request: Request) -> Response:
    svc = services(request)
    svc.auth.user(request.headers.get("authorization"))
    sale = await _sale(svc.room, request.path_params["sale_id"])
    return json_response(_out(svc.room, sale, time.time()))


@endpoint("change_sale")
async def change_sale(request: Request) -> Response:
    svc = services(request)
    svc.auth.admin(request.headers.get("authorization"))
    room = svc.room
    sale = await _sale(room, request.path_params["sale_id"])
    body = await read_json(request, _sale_patch)
    now = time.time()
    if body.admit_per_second is not None and body.admit_per_second != sale.admit_per_second:
        sale = msgspec.structs.replace(sale, admit_per_second=body.admit_per_second)
        await room.registry.replace(sale)
    if body.state is not None:
        try:
            wanted = sales.transition(room.state(sale.sale_id, now), body.state)
        except BadSale as exc:
            raise Problem("invalid-state", str(exc)) from None
        if wanted == policy.CLOSED:
            await room.registry.close(sale)
        else:
            await room.queues.set_state(sale.sale_id, wanted)
    await room.refresh()
    return json_response(_out(room, room.sales.get(sale.sale_id, sale), time.time()))


def _queue_answer(answer: Answer, status: int = 200) -> Response:
    v = answer.view
    offered = v.state == policy.SOLD_OUT and answer.admission is not None
    body = QueueOut(v.state, v.place, v.ahead, v.eta_seconds, v.poll_after_seconds,
                    answer.admission, answer.ticket, offered)  # fmt: skip
    return json_response(body, status)


#: the queue endpoints' error mapping and metrics, shared by both ways in: the route
#: table's entries below, and the raw ASGI way most requests take (server/api/hot.py)
JOIN, POLL = Guard("join_queue"), Guard("poll_queue")


async def join(svc: Services, sale_id: str, headers: dict[bytes, str]) -> Response:
    """Join a sale's queue: the caller's place (the same one if they joined before)."""
    user = svc.auth.user(headers.get(b"authorization"))
    sale = svc.room.sales.get(sale_id) or await _sale(svc.room, sale_id)
    if svc.room.state(sale.sale_id, time.time()) == policy.CLOSED:
        raise Problem("invalid-state", f"Sale {sale.sale_id} is closed; there is no queue.")
    return _queue_answer(await svc.room.join(sale.sale_id, user.id, time.time()))


async def poll(svc: Services, sale_id: str, headers: dict[bytes, str]) -> Response:
    """The caller's view of a sale's queue, from their ticket and memory."""
    user = svc.auth.user(headers.get(b"authorization"))
    sale = svc.room.sales.get(sale_id) or await _sale(svc.room, sale_id)
    now = time.time()
    try:
        answer = await svc.room.poll(sale.sale_id, user.id, headers.get(b"queue-ticket"), now)
    except PollTooSoon as exc:
        wait = max(1, round(exc.retry_after))
        return problem_response("polling-too-fast", str(exc), headers={"Retry-After": str(wait)})
    return _queue_answer(answer)


async def join_queue(request: Request) -> Response:
    """POST /v1/sales/{sale_id}/queue through Starlette (requests normally take the raw
    ASGI way in, server/api/hot.py)."""
    answer = join(services(request), request.path_params["sale_id"], raw_headers(request))
    return await JOIN.run(request.method, answer)


async def poll_queue(request: Request) -> Response:
    """GET /v1/sales/{sale_id}/queue through Starlette (see join_queue)."""
    answer = poll(services(request), request.path_params["sale_id"], raw_headers(request))
    return await POLL.run(request.method, answer)
