"""The part of tests/ray_up_cycle.py that runs inside its namespaces: sshd, `ray up`,
bookings, `ray down`, and the count of what is left.

Refuses to start unless it sees a PID namespace of its own and a network with only
loopback: `ray down` kills every Ray process in sight.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
WHEELS = REPO / ".venv" / "ray-up-wheels"
HOME = Path("/tmp/home")
SSH_KEY = HOME / ".ssh" / "id_ed25519"
URL = "http://127.0.0.1:8000"
REDIS_PORT = 6380
#: the front end's own default (server/settings.py): ray down must not need a shorter one
RAY_LOST_SECONDS = 30.0
#: `ray down` (its `ray stop` took 4-30 s here, on a loaded machine) until no Ray process
DOWN_BOUND = 120.0
#: from the last Ray process gone to no front end: its lost-Ray threshold plus its drain
GONE_BOUND = RAY_LOST_SECONDS + 20.0
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
SSH_OPTS += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-i", str(SSH_KEY)]


class CycleError(Exception):
    """A step of the cycle failed; the message says which and why."""


def sh(*cmd: str, timeout: float = 30, **kw: Any) -> str:
    """Run a command; its stdout, or CycleError with its output."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise CycleError(f"{cmd[0]} took longer than {timeout} s") from None
    if done.returncode != 0:
        raise CycleError(f"{' '.join(cmd)[:200]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def wait_for(what: str, ok: Callable[[], bool], timeout: float, every: float = 0.2) -> float:
    """Seconds until ok() held; CycleError after timeout."""
    start = time.monotonic()
    while not ok():
        if time.monotonic() - start > timeout:
            raise CycleError(f"{what}: not within {timeout} s")
        time.sleep(every)
    return time.monotonic() - start


# ---- the namespace -------------------------------------------------------------------


def processes() -> dict[int, list[str]]:
    """pid -> argv of every live (not zombie) process in sight, but this one and PID 1."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in (1, os.getpid()):
            continue
        try:
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        found[int(d.name)] = [a for a in argv if a]
    return found


def kind(argv: list[str]) -> str:
    """front end, redis, ray, ssh, or other."""
    line = " ".join(argv)
    if argv[1:3] == ["-m", "server"]:
        return "front end"
    if re.search(r"(valkey|redis)-server", argv[0]):  # Redis rewrites its argv[0]
        return "redis"
    if argv[0].startswith(("ssh", "/usr/bin/ssh", "/usr/sbin/sshd")):  # also "sshd: root@..."
        return "ssh"
    # Ray's own processes (raylet, GCS, dashboard, workers, actors "ray::RouteActor"), not
    # the shells that run `ray stop`
    if argv[0].startswith("ray::") or "site-packages/ray/" in line:
        return "ray"
    return "other"


def census() -> dict[str, list[int]]:
    """kind -> pids."""
    out: dict[str, list[int]] = {}
    for pid, argv in processes().items():
        if argv:
            out.setdefault(kind(argv), []).append(pid)
    return out


def check_isolation() -> None:
    """Refuse to go on in the machine's own PID or network namespace."""
    seen = processes()
    nets = [name for _, name in socket.if_nameindex()]
    if os.getpid() > 10 or len(seen) > 3 or nets != ["lo"]:
        raise SystemExit(
            f"ray_up_inside: not in private namespaces (pid {os.getpid()}, {len(seen)} other "
            f"processes, interfaces {nets}); refusing to run `ray down`. Use ray_up_cycle.py."
        )


def private_mounts(work: Path) -> None:
    """/tmp is the work dir; /run, /dev/shm fresh; root's home is HOME (passwd copy)."""
    sh("mount", "--make-rprivate", "/")
    sh("mount", "--bind", str(work), "/tmp")
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    sh("mount", "-t", "tmpfs", "tmpfs", "/dev/shm")
    Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege separation dir
    HOME.mkdir(mode=0o700)
    passwd = re.sub(
        r"^(root:[^:]*:0:0:[^:]*:)[^:]*:",
        rf"\g<1>{HOME}:",
        Path("/etc/passwd").read_text(),
        flags=re.M,
    )
    Path("/tmp/passwd").write_text(passwd)
    sh("mount", "--bind", "/tmp/passwd", "/etc/passwd")
    sh("ip", "link", "set", "lo", "up")


def start_sshd() -> subprocess.Popen[bytes]:
    """A private sshd on 127.0.0.1:22: own host key, config, pid file; root by key only."""
    d = Path("/tmp/sshd")
    d.mkdir()
    (HOME / ".ssh").mkdir(mode=0o700)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key"))
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(SSH_KEY))
    (HOME / ".ssh" / "authorized_keys").write_text(Path(f"{SSH_KEY}.pub").read_text())
    (d / "sshd_config").write_text(
        f"""ListenAddress 127.0.0.1
Port 22
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {HOME}/.ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 100
MaxSessions 100
"""
    )
    log = open("/tmp/sshd.log", "wb")  # noqa: SIM115 - sshd keeps writing to it
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log
    )
    log.close()

    def answers() -> bool:
        return (
            subprocess.run(
                ["ssh", *SSH_OPTS, "root@127.0.0.1", "true"], capture_output=True, timeout=10
            ).returncode
            == 0
        )

    wait_for("sshd answers", answers, 20)
    home = sh("ssh", *SSH_OPTS, "root@127.0.0.1", "echo $HOME").strip()
    if home != str(HOME):
        raise CycleError(f"an ssh session's HOME is {home}, not {HOME}: refusing to go on")
    return proc


# ---- the node and the cluster config ----------------------------------------------------


def prepare_node(redis_url: str, jwt: str, plane: str) -> None:
    """What a real node has before `ray up`: python3 on PATH, a package mirror, secrets."""
    bin_dir = HOME / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys._base_executable))
    (HOME / ".bashrc").write_text(
        f'export PATH="{bin_dir}:$PATH"\n'
        f"export PIP_NO_INDEX=1 PIP_FIND_LINKS={WHEELS} UV_FIND_LINKS={WHEELS} UV_OFFLINE=1\n"
        "export RAY_USAGE_STATS_ENABLED=0\n"
    )
    conf = HOME / ".config" / "ticketd"
    conf.mkdir(parents=True, mode=0o700)
    env = (REPO / "deploy" / "ticketd.env.example").read_text()
    for name, value in (
        ("TICKETD_REDIS_URL", redis_url),
        ("TICKETD_JWT_SECRET", jwt),
        ("TICKETD_CLUSTER_SECRET", plane),
    ):
        env, n = re.subn(rf"^{name}=.*$", f"{name}={value}", env, count=1, flags=re.M)
        if n != 1:
            raise CycleError(f"deploy/ticketd.env.example has no {name}= line")
    if re.search(r"^[^#].*CHANGE-ME", env, flags=re.M):
        raise CycleError("deploy/ticketd.env.example has a CHANGE-ME this test does not fill")
    (conf / "ticketd.env").write_text(env)
    (conf / "ray_auth_token").write_text(secrets.token_hex(32))
    for f in conf.iterdir():
        f.chmod(0o600)


def cluster_copy() -> Path:
    """The repo's cluster.yaml with only machine-specific values changed; returns its path."""
    text = (REPO / "cluster.yaml").read_text()
    redis_line = "# - ~/ticketd/deploy/node.sh redis start"
    if redis_line not in text:
        raise CycleError(f"cluster.yaml lost its optional {redis_line!r}")
    config = yaml.safe_load(text)
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"]["ssh_user"] = "root"
    head = config["head_start_ray_commands"]
    ray_start = next(i for i, cmd in enumerate(head) if "ray start --head" in cmd)
    head.insert(ray_start, redis_line.removeprefix("# - "))
    path = Path("/tmp/cluster.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


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


def readyz_answer() -> str:
    """What /readyz answers within 5 s (a front end whose Ray is gone must still answer)."""
    t = time.monotonic()
    try:
        status = str(httpx.get(f"{URL}/readyz", timeout=5).status_code)
    except httpx.TransportError as exc:
        status = type(exc).__name__
    return f"{status} after {time.monotonic() - t:.2f} s"


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
            res["readyz_ray_gone"] = readyz_answer()
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
