"""structlog setup: JSON lines in production, readable in a terminal."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(json: bool | None = None, level: int = logging.INFO) -> None:
    """JSON when stderr is not a TTY (or when asked); request ids come from contextvars."""
    if json is None:
        json = not sys.stderr.isatty()
    # plain tracebacks: the rich default renders locals and costs ~1 s per exception,
    # which turns an error storm into a stalled event loop
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write per line, newline included (PrintLogger writes the newline apart): the
        # front end's workers share the supervisor's stderr, and another process's line
        # could otherwise land between a message and its newline (tests/server/test_logs.py)
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
