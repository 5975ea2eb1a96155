"""A real ticketd served by uvicorn on a free loopback port, for tests that need a socket
(schemathesis, the browser): the app in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from server.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def live_app(settings: Settings) -> Iterator[str]:
    """The app at its URL once /healthz answers (at most 30 s); stopped on exit."""
    from server.app import create_app
    from server.boot.runtime import Runtime

    port = free_port()
    config = uvicorn.Config(create_app(settings, Runtime(settings)), host="127.0.0.1",
                            port=port, log_level="warning", lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
