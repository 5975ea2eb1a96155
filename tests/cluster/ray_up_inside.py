"""The cycle of tests/cluster/ray_up_cycle.py, inside its namespaces (set up by ray_up_machine.py):
`ray up`, bookings, `ray down`, and the count of what is left."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from ray_up_machine import (
    HOME,
    REPO,
    SSH_OPTS,
    CycleError,
    census,
    check_isolation,
    cluster_copy,
    prepare_node,
    private_mounts,
    processes,
    sh,
    start_sshd,
    wait_for,
)

URL = "http://127.0.0.1:8000"
REDIS_PORT = 6380
#: the front end's own default (server/settings.py): ray down must not need a shorter one
RAY_LOST_SECONDS = 30.0
#: `ray down` (its `ray stop` took 4-30 s here, on a loaded machine) until no Ray process
DOWN_BOUND = 120.0
#: from the last Ray process gone to no front end: its lost-Ray threshold plus its drain
GONE_BOUND = RAY_LOST_SECONDS + 20.0


def client_env() -> dict[str, str]:
    """The environment of `ray up`/`ray down` and the clients: HOME, nothing of ticketd's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_"))}
    env.update(HOME=str(HOME), RAY_USAGE_STATS_ENABLED="0", PATH=f"{REPO}/.venv/bin:{env['PATH']}")
    return env


# ---- what a client does ------------------------------------------------------------------


def book_once(jwt: str) -> dict[str, Any]:
    """Admin creates a route; alice books and confirms (tokens from `python -m server token`)."""
    env = {**client_env(), "TICKETD_JWT_SECRET": jwt, "TICKETD_DATA_DIR": "/tmp/client-data"}
    env["TICKETD_CLUSTER_SECRET"] = jwt
    py = str(REPO / ".venv" / "bin" / "python")

    def token(*args: str) -> str:
        return sh(py, "-m", "server", "token", *args, env=env, cwd=REPO).strip()

    admin, alice = token("--user", "ops", "--admin"), token("--user", "alice")
    route = {
        "train": "G12",
        "date": "2026-12-01",
        "stations": ["Beijing South", "Jinan West", "Nanjing South"],
        "coaches": [{"number": "03", "class": "second", "rows": 4, "letters": "ABCDF"}],
    }
    trip = {"from": "Beijing South", "to": "Nanjing South", "class": "second"}
    with httpx.Client(base_url=URL, timeout=30) as http:
        r = http.post("/v1/routes", json=route, headers={"Authorization": f"Bearer {admin}"})
        if r.status_code != 201:
            raise CycleError(f"create route: {r.status_code} {r.text}")
        rid = r.json()["route_id"]
        body = {**trip, "passengers": [{"name": "Li Lei", "id": "110101199001011234"}]}
        auth = {"Authorization": f"Bearer {alice}", "Idempotency-Key": str(uuid.uuid4())}
        r = http.post(f"/v1/routes/{rid}/bookings", json=body, headers=auth)
        if r.status_code != 201:
            raise CycleError(f"book: {r.status_code} {r.text}")
        bid = r.json()["booking_id"]
        r = http.post(f"/v1/bookings/{bid}/confirm", headers={"Authorization": f"Bearer {alice}"})
        if r.status_code != 200 or r.json().get("status") != "confirmed":
            raise CycleError(f"confirm: {r.status_code} {r.text}")
    return {"route_id": rid, "booking_id": bid, "status": "confirmed"}


def flash_sale(jwt: str, seconds: float) -> dict[str, Any]:
    """A short loadgen flash sale through the front end; its audit must pass."""
    py = str(REPO / ".venv" / "bin" / "python")
    cmd = [py, "-m", "loadgen", "--url", URL, "--jwt-secret", jwt, "--scenario", "flash-sale"]
    cmd += ["--duration", str(seconds), "--concurrency", "16", "--no-progress"]
    cmd += ["--report", "/tmp/flash.json"]
    sh(*cmd, env=client_env(), cwd=REPO, timeout=seconds + 120)
    report = json.loads(Path("/tmp/flash.json").read_text())
    audit = {k: v for k, v in report["audit"].items() if k != "details"}
    keep = ("requests", "throughput_rps", "acknowledged_bookings", "status_counts")
    return {"audit": audit, **{k: report[k] for k in keep}}


def readyz_answers() -> list[str]:
    """What two /readyz probes in a row answer, and how fast (a front end whose Ray is
    gone answers 503: the first after its 5 s Ray check, the next at once)."""
    out = []
    for _ in range(2):
        t = time.monotonic()
        try:
            status = str(httpx.get(f"{URL}/readyz", timeout=10).status_code)
        except httpx.TransportError as exc:
            status = type(exc).__name__
        out.append(f"{status} after {time.monotonic() - t:.2f} s")
    return out


def port_free(port: int, host: str = "0.0.0.0") -> bool:
    """Whether host:port can be bound (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ---- the cycle ---------------------------------------------------------------------------


def cycle(res: dict[str, Any], timings: dict[str, float], sale_seconds: float) -> None:
    """ray up → book → sale → ray down → nothing left; fills res, raises CycleError."""
    jwt, plane = secrets.token_hex(32), secrets.token_hex(32)
    redis_url = f"redis://:{secrets.token_hex(24)}@127.0.0.1:{REDIS_PORT}/0"
    prepare_node(redis_url, jwt, plane)
    config = cluster_copy()
    ray = str(REPO / ".venv" / "bin" / "ray")
    env = client_env()

    # `ray up` is idempotent and is run again as an operator would: on a loaded machine
    # `ray start --head` can miss Ray's fixed 30 s for the raylet to register
    for attempt in (1, 2):
        t = time.monotonic()
        with open(f"/tmp/ray-up-{attempt}.log", "wb") as log:
            up = subprocess.run(
                [ray, "up", "-y", "--no-config-cache", "--disable-usage-stats", str(config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
        timings["ray_up"] = round(time.monotonic() - t, 1)
        if up.returncode == 0:
            break
        tail = Path(f"/tmp/ray-up-{attempt}.log").read_text(errors="replace")[-4000:]
        res.setdefault("ray_up_failures", []).append(tail[-600:])
        if attempt == 2:
            raise CycleError(f"ray up exited {up.returncode} twice:\n{tail}")

    def ready() -> bool:
        try:
            return httpx.get(f"{URL}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for("/readyz after ray up", ready, 60)
    res["booking"] = book_once(jwt)
    res["flash_sale"] = flash_sale(jwt, sale_seconds)
    before = census()
    res["before_ray_down"] = {k: len(v) for k, v in before.items()}
    now = processes()
    res["before_ray_down_other"] = [
        [a[:80] for a in now.get(p, [])[:4]] for p in before.get("other", [])
    ]
    for needed in ("front end", "ray", "redis"):
        if not before.get(needed):
            raise CycleError(f"no {needed} process after ray up: {before}")

    t = time.monotonic()
    down_log = open("/tmp/ray-down.log", "wb")  # noqa: SIM115 - closed below
    down = subprocess.Popen(
        [ray, "down", "-y", str(config)],
        cwd=REPO,
        env=env,
        stdout=down_log,
        stderr=subprocess.STDOUT,
    )
    down_log.close()
    gone: dict[str, float] = {}
    while time.monotonic() - t < DOWN_BOUND + GONE_BOUND:
        now = census()
        for what in ("ray", "front end"):
            if what not in gone and not now.get(what):
                gone[what] = round(time.monotonic() - t, 1)
        if "ray" in gone and "front end" not in gone and "readyz_ray_gone" not in res:
            res["readyz_ray_gone"] = readyz_answers()
        if down.poll() is not None and "ray_down" not in timings:
            timings["ray_down"] = round(time.monotonic() - t, 1)
        if len(gone) == 2 and down.poll() is not None:
            break
        if "ray" not in gone and time.monotonic() - t > DOWN_BOUND:
            break
        if "ray" in gone and time.monotonic() - t > gone["ray"] + GONE_BOUND:
            break
        time.sleep(0.2)
    if down.poll() is None:
        down.kill()
        raise CycleError("ray down did not return")
    timings["ray_down_to_no_ray"] = gone.get("ray", -1)
    timings["ray_down_to_no_front_end"] = gone.get("front end", -1)
    if len(gone) == 2:
        timings["no_ray_to_no_front_end"] = round(gone["front end"] - gone["ray"], 1)
    if down.returncode != 0:
        raise CycleError(f"ray down exited {down.returncode}")
    left = census()
    if "ray" not in gone:
        raise CycleError(
            f"Ray processes left after ray down: {[processes().get(p) for p in left['ray']]}"
        )
    if "front end" not in gone:
        raise CycleError(f"the front end lingers {GONE_BOUND} s after its Ray went: {left}")
    front_log = (HOME / "ticketd-logs" / "frontend.log").read_text(errors="replace")
    res["front_end_said"] = [ln for ln in front_log.splitlines() if "ray cluster gone" in ln][-1:]
    if not res["front_end_said"]:
        raise CycleError("the front end exited without logging 'ray cluster gone'")

    # Redis holds the bookings: `ray down` leaves it running by design (docs/deploy.md);
    # an operator stops it, here as cluster.yaml started it
    if not left.get("redis"):
        raise CycleError("ray down stopped Redis, which must outlive the cluster")
    sh("ssh", *SSH_OPTS, "root@127.0.0.1", "~/ticketd/deploy/node.sh redis stop", timeout=60)
    wait_for("Redis stopped", lambda: not census().get("redis"), 30)
    # ssh's multiplexing masters (ControlPersist) and their sessions expire by themselves
    wait_for("only sshd left", lambda: set(census()) <= {"ssh"}, 30)
    res["left_after"] = {k: len(v) for k, v in census().items()}
    res["ports_free"] = {p: port_free(p) for p in (8000, 6379, REDIS_PORT, 8265)}
    if not all(res["ports_free"].values()):
        raise CycleError(f"ports still taken: {res['ports_free']}")


def run(work: Path, sale_seconds: float = 10.0) -> int:
    """The cycle inside the namespaces; writes /tmp/result.json; 0 when it passed."""
    check_isolation()
    private_mounts(work)
    res: dict[str, Any] = {"failures": []}
    timings: dict[str, float] = {}
    sshd = None
    try:
        sshd = start_sshd()
        cycle(res, timings, sale_seconds)
    except CycleError as exc:
        res["failures"].append(str(exc))
        res["left"] = {pid: argv[:4] for pid, argv in processes().items()}
    finally:
        res["timings"] = timings
        if sshd is not None:
            sshd.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                sshd.wait(10)
        Path("/tmp/result.json").write_text(json.dumps(res, indent=2, sort_keys=True))
    print(json.dumps({"timings": timings, "failures": res["failures"]}, indent=1))
    return 1 if res["failures"] else 0
