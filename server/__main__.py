"""`python -m server` runs ticketd; `python -m server token --user U [--admin]` prints a JWT."""

from __future__ import annotations

import os

# Ray reads RAY_AUTH_MODE when its core library loads: decide before anything imports ray.
# A local Ray runs with token auth (the token lives in ~/.ray/auth_token); set
# RAY_AUTH_MODE=disabled yourself only on a private network (see README).
os.environ.setdefault("RAY_AUTH_MODE", "token")

import argparse
import signal
import socket
import sys
from typing import TYPE_CHECKING

from server.settings import ConfigError, Settings

if TYPE_CHECKING:
    from server.boot.runtime import Runtime

#: exit code of a front end whose Ray cluster went away for good (see server/boot/raywatch.py)
RAY_LOST = 3


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the server (the default)")
    # started by the supervisor (server/boot/workers.py), never by hand
    sub.add_parser("worker", help=argparse.SUPPRESS)
    tok = sub.add_parser("token", help="print a bearer token signed with the server's secret")
    tok.add_argument("--user", required=True, help="user id (the token's sub claim)")
    tok.add_argument("--admin", action="store_true", help="add role: admin")
    tok.add_argument("--ttl", type=float, default=86400.0, help="validity in seconds")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        settings = settings.with_secret()
    except ConfigError as exc:
        print(f"ticketd: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the generated JWT and cluster secrets live in DATA_DIR
        print(
            f"ticketd: cannot start: TICKETD_DATA_DIR={str(settings.data_dir)!r} is not a "
            f"writable directory for the generated secrets ({exc.strerror}); point it at "
            f"one, or set TICKETD_JWT_SECRET and TICKETD_CLUSTER_SECRET.",
            file=sys.stderr,
        )
        return 2
    if args.command == "token":
        from server.api.auth import mint

        print(mint(settings.jwt_secret, args.user, args.admin, args.ttl))
        return 0
    if args.command == "worker":
        return serve_worker(settings)
    return serve(settings)


def serve(settings: Settings) -> int:
    """Start Redis/Ray, serve HTTP until SIGINT/SIGTERM, then stop everything."""
    import structlog

    from server import logs
    from server.boot import preflight

    logs.configure(settings.log_json)
    log = structlog.get_logger("ticketd")
    # everything that can be judged before Ray starts (Ray itself is not even imported yet)
    try:
        warnings = preflight.check(settings)
    except preflight.StartupError as exc:
        print(f"ticketd: cannot start: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        log.warning("redis durability", detail=warning)

    from server.boot.runtime import Runtime

    runtime = Runtime(settings)
    runtime.preflighted = True
    try:
        try:
            # on the main thread, before uvicorn: see server/boot/runtime.py
            runtime.start()
        except preflight.StartupError as exc:
            print(f"ticketd: cannot start: {exc}", file=sys.stderr)
            return 2
        if settings.workers > 1:
            code = _supervise(settings, runtime)
        else:
            _serve_http(settings, runtime)
            code = 0
    finally:
        # idempotent: a second SIGINT/SIGTERM (make + process group) must not break it
        runtime.stop()
    return _leave(runtime, code)


def serve_worker(settings: Settings) -> int:
    """One front-end worker of a node: its supervisor's Redis and Ray, the shared port."""
    import structlog

    from server import logs
    from server.boot import preflight
    from server.boot.runtime import Runtime
    from server.boot.workers import listen_socket

    logs.configure(settings.log_json)
    structlog.contextvars.bind_contextvars(worker=os.environ.get("TICKETD_WORKER_INDEX"))
    runtime = Runtime(settings)
    runtime.preflighted = True  # the supervisor checked the set-up before starting us
    try:
        try:
            runtime.start_ray()
        except preflight.StartupError as exc:
            print(f"ticketd worker: cannot start: {exc}", file=sys.stderr)
            return 2
        # bound now, listening only once the app is ready: until then the kernel sends
        # this port's new connections to the other workers
        sock = listen_socket(settings.host, settings.port, listen=False)
        _serve_http(settings, runtime, sock)
    finally:
        runtime.stop()
    return _leave(runtime, 0)


def _supervise(settings: Settings, runtime: Runtime) -> int:
    from server.boot.workers import Supervisor

    supervisor = Supervisor(settings, runtime)

    def stop(signum: int, frame: object) -> None:
        supervisor.signalled()  # takes no lock: signals may come in a burst

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    runtime.watch_ray(lambda: supervisor.request_stop(RAY_LOST))
    return supervisor.run()


def _serve_http(settings: Settings, runtime: Runtime, sock: socket.socket | None = None) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM or the Ray cluster is gone."""
    import uvicorn

    from actors import heap
    from server.app import create_app
    from server.boot.http import HttpProtocol

    app = create_app(settings, runtime)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="server.boot.loop:new_event_loop",  # see server/boot/loop.py
        http=HttpProtocol,  # httptools, one socket write per response: server/boot/http.py
        access_log=False,  # per-request logs cost more than the request; see /metrics
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        # per-request layers nothing here reads: no endpoint looks at the client's address
        # (X-Forwarded-For from a balancer), and "server: uvicorn" tells a client nothing
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)

    def stop_serving(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn handles SIGINT/SIGTERM while it serves, then restores the handlers it
    # found and raises the signal again. The one found would be Ray's (ray.init sets
    # SIGTERM to sys.exit(15)), so a graceful stop would exit 15, and SIGINT would end
    # in a KeyboardInterrupt traceback. Ours only asks uvicorn to stop: a signal
    # before, during or after serving ends in a clean shutdown and exit code 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_serving)

    def ray_lost() -> None:
        server.should_exit = True  # a plain flag: safe from the watch's thread

    runtime.watch_ray(ray_lost)
    heap.keep(settings.gc_freeze_seconds)  # full collections off the hot path: actors/heap.py
    server.run(sockets=None if sock is None else [sock])


def _leave(runtime: Runtime, code: int) -> int:
    if runtime.ray_lost:
        code = RAY_LOST
    if runtime.ray_lost or runtime.ray_stuck:
        # Ray's own exit hooks would wait for the gone GCS: leave without them
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
