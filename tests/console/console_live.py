"""A real ticketd on a free port for the console's browser and schema tests, and a headless
Debian Chromium driven by selenium."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = (
    "Chromium is needed for the console's browser tests: install it with "
    "`apt-get install -y --no-install-recommends chromium chromium-driver` "
    "(`make test` does this by itself when run as root)."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(redis_url: str, data_dir: Path) -> Iterator[str]:
    """The app served by uvicorn on a free port, in a thread with its own event loop; the
    secrets are the other tests' (route actors outlive a test, and keep their secret)."""
    from conftest import JWT_SECRET, PLANE_SECRET

    from server.app import create_app
    from server.boot.runtime import Runtime
    from server.settings import Settings

    s = Settings(
        redis_url=redis_url, jwt_secret=JWT_SECRET, cluster_secret=PLANE_SECRET, data_dir=data_dir
    )
    port = free_port()
    config = uvicorn.Config(create_app(s, Runtime(s)), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")  # fmt: skip
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


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is missing. {INSTALL}"
    return None


@contextlib.contextmanager
def browser(width: int = 1100, height: int = 900) -> Iterator[object]:
    """A fresh headless Chromium session (its own empty profile); fails, never skips,
    when Chromium is not installed."""
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ticketd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # the closed network refuses Chromium's background connections: keep it quiet
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
