"""The data plane: authentication, multiplexing, and the failures a front end must survive.

The actor side is a real route actor under a real Ray with a real Redis; the
impostor and stalled servers are plain asyncio servers speaking the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio
from support.actors import (
    PLANE_SECRET,
    actor_config,
    actor_pid,
    book,
    bookings,
    create_route,
    decode_reply,
    route_actor,
    route_def,
    sigkill,
    submit,
    trips,
)
from support.http import booking_body, coach, people, route_body, train_of

from actors.domain.messages import ListBookings, encode
from actors.plane import protocol
from actors.storage import keys
from server.dispatch.link import Link

RouteIds = Callable[[], str]
WRONG = "not-the-cluster-secret-0123456789abcdef"


async def _address(handle: Any) -> dict[str, Any]:
    where: dict[str, Any] = await asyncio.wait_for(handle.address.remote(), 60)
    return where


# ---- against a real actor ------------------------------------------------------------------


@pytest.mark.usefixtures("ray_local")
async def test_a_client_without_the_secret_is_cut_off_and_changes_nothing(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        assert (await submit(handle, [book("a")])).results[0].ok
        journalled = await redis_client.xlen(keys.journal(route.route_id))
        where = await _address(handle)

        # the wrong secret, over TCP and over the same-node socket: refused at the handshake
        for unix in (False, True):
            with pytest.raises(protocol.AuthFailed, match="refused"):
                await Link.connect(where, WRONG, unix=unix, label="intruder")

        # a raw client that skips the proof and sends a booking frame straight away
        reader, writer = await asyncio.open_connection(where["host"], where["port"])
        try:
            hello = await reader.readexactly(protocol.HELLO_SIZE)
            assert hello.startswith(protocol.MAGIC)
            fake_proof = bytes(protocol.PROOF_SIZE)
            writer.write(fake_proof + protocol.frame(1, protocol.OP_SUBMIT, encode([book("b")])))
            await writer.drain()
            # the server hangs up without a word: no proof of its own, no answer to the frame
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

        # a client that never proves anything is cut off after the handshake deadline
        reader, writer = await asyncio.open_connection(where["host"], where["port"])
        try:
            await reader.readexactly(protocol.HELLO_SIZE)
            eof = await asyncio.wait_for(reader.read(), protocol.HANDSHAKE_SECONDS + 10)
            assert eof == b""
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

        assert await redis_client.xlen(keys.journal(route.route_id)) == journalled
        assert set(await bookings(handle)) == {"bk-a"}


@pytest.mark.usefixtures("ray_local")
async def test_many_batches_in_flight_on_one_link_each_get_their_own_answer(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=20, letters="ABCD"))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        link = await Link.connect(await _address(handle), PLANE_SECRET, unix=True, label="t")
        try:
            tags = [f"m{k}" for k in range(60)]
            futures = [
                link.request(protocol.OP_SUBMIT, encode([book(tag, i, j)]))
                for tag, (i, j) in zip(tags, trips(60), strict=True)
            ]
            assert link.in_flight == 60
            replies = [decode_reply(raw) for raw in await asyncio.gather(*futures)]
            got = [r.results[0].record.booking_id for r in replies if r.results[0].record]
            assert got == [f"bk-{tag}" for tag in tags]  # each answer is its own request's
            # later answers carry only the classes that changed since the link's last one
            listed = decode_reply(await link.request(protocol.OP_SUBMIT, encode([ListBookings()])))
            assert listed.matrix == {}
            assert listed.results[0].records is not None
            assert len(listed.results[0].records) == 60
            fresh = decode_reply(await link.request(protocol.OP_AVAILABILITY))
            assert fresh.matrix == {} and fresh.version == listed.version
        finally:
            link.close()


@pytest.mark.usefixtures("ray_local")
async def test_requests_in_flight_when_the_actor_dies_fail_and_a_new_link_serves(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        before = await _address(handle)
        link = await Link.connect(before, PLANE_SECRET, unix=True, label="t")
        try:
            assert decode_ok(await link.request(protocol.OP_SUBMIT, encode([book("a")])))
            sigkill(await actor_pid(handle))
            with pytest.raises(protocol.LinkLost):
                await asyncio.wait_for(link.request(protocol.OP_SUBMIT, encode([book("b")])), 30)
            assert not link.open
        finally:
            link.close()
        # the restarted actor listens elsewhere, under a new epoch
        after = await _address(handle)
        assert after["epoch"] > before["epoch"]
        assert (after["port"], after["pid"]) != (before["port"], before["pid"])
        assert (await submit(handle, [book("a")])).results[0].record is not None
        assert "bk-a" in await bookings(handle)


def decode_ok(raw: bytes) -> bool:
    return all(r.ok for r in decode_reply(raw).results)


# ---- against protocol-speaking fakes -------------------------------------------------------


@contextlib.asynccontextmanager
async def _fake_actor(
    secret: str, answer: Callable[[asyncio.StreamWriter, int], Awaitable[None]] | None
) -> AsyncIterator[dict[str, Any]]:
    """A server that passes the handshake with `secret`, then answers each frame with
    `answer` (None: never answers)."""
    key = secret.encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_nonce = protocol.nonce()
        writer.write(protocol.MAGIC + server_nonce)
        try:
            proof = await reader.readexactly(protocol.PROOF_SIZE)
            client_nonce = proof[: protocol.NONCE]
            writer.write(protocol.server_proof(key, server_nonce, client_nonce))
            buf = bytearray()
            while data := await reader.read(65536):
                buf += data
                for req_id, _, _ in protocol.split_frames(buf):
                    if answer is not None:
                        await answer(writer, req_id)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield {"host": "127.0.0.1", "port": server.sockets[0].getsockname()[1], "unix": ""}
    finally:
        server.close()
        await server.wait_closed()


async def test_an_impostor_that_cannot_prove_the_secret_is_refused() -> None:
    async with _fake_actor(WRONG, None) as where:
        with pytest.raises(protocol.AuthFailed, match="could not prove"):
            await Link.connect(where, PLANE_SECRET, unix=False, label="t")


async def test_a_stalled_actor_fails_the_requests_in_flight_after_the_request_timeout() -> None:
    async with _fake_actor(PLANE_SECRET, None) as where:
        link = await Link.connect(where, PLANE_SECRET, unix=False, request_timeout=1.0)
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(protocol.LinkLost, match="no answer within 1 s"):
                await asyncio.wait_for(link.request(protocol.OP_SUBMIT, b"\x90"), 10)
            assert asyncio.get_running_loop().time() - started < 3
            assert not link.open
            with pytest.raises(protocol.LinkLost):
                link.request(protocol.OP_SUBMIT, b"\x90")
        finally:
            link.close()


async def test_answers_of_the_ending_activation_and_of_failures_are_told_apart() -> None:
    async def gone(writer: asyncio.StreamWriter, req_id: int) -> None:
        code = protocol.GONE if req_id == 1 else protocol.ERROR
        writer.write(protocol.frame(req_id, code, b"JournalCorrupt: entry 1-0"))

    async with _fake_actor(PLANE_SECRET, gone) as where:
        link = await Link.connect(where, PLANE_SECRET, unix=False)
        try:
            with pytest.raises(protocol.Gone):
                await link.request(protocol.OP_SUBMIT, b"\x90")
            with pytest.raises(protocol.RemoteError, match="JournalCorrupt"):
                await link.request(protocol.OP_SUBMIT, b"\x90")
        finally:
            link.close()


def test_a_cluster_secret_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(protocol.AuthFailed, match="at least 32 bytes"):
        protocol.secret_bytes("short")


def test_frames_split_across_reads_and_oversized_frames() -> None:
    whole = protocol.frame(7, protocol.OK, b"hello") + protocol.frame(8, protocol.ERROR, b"no")
    buf = bytearray(whole[:5])
    assert protocol.split_frames(buf) == []
    buf += whole[5:]
    assert protocol.split_frames(buf) == [(7, protocol.OK, b"hello"), (8, protocol.ERROR, b"no")]
    assert buf == bytearray()
    with pytest.raises(protocol.PlaneError, match="bad frame length"):
        protocol.split_frames(bytearray((protocol.MAX_FRAME + 1).to_bytes(4, "big") + bytes(5)))


# ---- through the front end -----------------------------------------------------------------


async def test_the_front_end_reconnects_after_its_actor_is_killed(
    api: httpx.AsyncClient, token: Callable[..., str], route_id_factory: RouteIds
) -> None:
    import ray

    from actors.config import NAMESPACE
    from actors.directory import actor_name

    admin = {"Authorization": token("ops", admin=True)}
    body = route_body(train_of(route_id_factory), coaches=[coach("01", "second", 4, "AB")])
    r = await api.post("/v1/routes", json=body, headers=admin)
    assert r.status_code == 201, r.text
    rid = r.json()["route_id"]

    async def book_as(n: int) -> httpx.Response:
        return await api.post(
            f"/v1/routes/{rid}/bookings",
            json=booking_body("A", "B", "second", people(f"p{n}")),
            headers={"Authorization": token(f"u{n}"), "Idempotency-Key": f"k{n}"},
        )

    assert (await book_as(0)).status_code == 201
    handle = ray.get_actor(actor_name(rid), namespace=NAMESPACE)
    sigkill(await actor_pid(handle))
    answers = []
    for _ in range(200):  # the front end notices, asks Ray where the new actor is, reconnects
        r = await book_as(1)
        answers.append(r.status_code)
        if r.status_code == 201:
            break
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "unavailable"
        await asyncio.sleep(0.1)
    assert answers[-1] == 201, answers
    again = await book_as(1)  # the retry with the same key: the same booking
    assert again.status_code == 201 and again.json() == r.json()
    listed = (await api.get(f"/v1/routes/{rid}/bookings", headers=admin)).json()["bookings"]
    assert len(listed) == 2
    metrics = (await api.get("/metrics")).text
    connects = [x for x in metrics.splitlines() if x.startswith("ticketd_plane_connects_total")]
    assert connects and float(connects[0].split()[-1]) >= 2
