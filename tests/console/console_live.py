"""A real ticketd on a free port for the console's browser and schema tests, and a headless
Debian Chromium driven by selenium."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.live import live_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = (
    "Chromium is needed for the console's browser tests: install it with "
    "`apt-get install -y --no-install-recommends chromium chromium-driver` "
    "(`make test` does this by itself when run as root)."
)


@contextlib.contextmanager
def serve(redis_url: str, data_dir: Path) -> Iterator[str]:
    """A live ticketd with the other tests' secrets (route actors outlive a test, and keep
    their secret)."""
    from conftest import JWT_SECRET, PLANE_SECRET

    from server.settings import Settings

    s = Settings(
        redis_url=redis_url, jwt_secret=JWT_SECRET, cluster_secret=PLANE_SECRET, data_dir=data_dir
    )
    with live_app(s) as url:
        yield url


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


#: how long a page may take to show what a test waits for (s)
WITHIN = 15.0


def wait(what: str, check: Callable[[], Any], within: float = WITHIN, every: float = 0.05) -> Any:
    """What `check` gives once it is true; fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            got = check()
        except Exception:  # the element is not there yet (or was just redrawn)
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"within {within:g} s: {what}")
        time.sleep(every)


def css(driver: Any, selector: str) -> Any:
    """The page's element matching the CSS selector."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def sign_in(driver: Any, url: str, token: str) -> None:
    """Sign the browser in as the console does: the token in the page's sessionStorage."""
    driver.get(url + "/console/favicon.svg")  # same origin, so sessionStorage is the page's
    driver.execute_script("sessionStorage.setItem('ticketd.token', arguments[0])", token)
