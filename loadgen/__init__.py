"""ticketd: loadgen.

Flash-sale load generator with a Jepsen-style audit. Entry points: `run(config) -> Report`
(async, in-process) and `main(argv) -> int` (the command line, `python -m loadgen`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadgen.cli import main
    from loadgen.config import Config
    from loadgen.report import Report
    from loadgen.runner import run

__all__ = ["Config", "Report", "main", "run"]

_HOMES = {
    "Config": "loadgen.config",
    "Report": "loadgen.report",
    "main": "loadgen.cli",
    "run": "loadgen.runner",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one module (say the pure `loadgen.audit`) does not pull in the
    # HTTP client, rich and uvloop with it.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loadgen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
