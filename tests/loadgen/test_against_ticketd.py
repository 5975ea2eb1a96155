"""loadgen against the real ticketd over a real socket: a short flash sale audits clean."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn

from loadgen import Config, run
from server.app import create_app
from server.boot.runtime import Runtime
from server.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_local")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def served(redis_url: str, jwt_secret: str, tmp_path: Path) -> AsyncIterator[str]:
    """ticketd served by uvicorn on a loopback port, sharing the session's Redis and Ray."""
    port = _free_port()
    settings = Settings(redis_url=redis_url, jwt_secret=jwt_secret, data_dir=tmp_path, port=port)
    app = create_app(settings, Runtime(settings))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_short_flash_sale_against_real_server_audits_clean(
    served: str, jwt_secret: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "flash.json"
    config = Config(
        url=served,
        jwt_secret=jwt_secret,
        scenario="flash-sale",
        duration=4.0,
        concurrency=16,
        routes=2,
        seats=60,
        seed=7,
        report=report_path,
        progress=False,
    )
    report = await run(config)
    data = json.loads(report_path.read_text())
    assert data["audit"]["ok"], data["audit"]
    assert data["acknowledged_bookings"] > 0
    assert data["audit"]["double_sold"] == 0 and data["audit"]["lost"] == 0
    assert report_path.with_suffix(".png").exists()
    assert report is not None
