"""The machine of tests/cluster/ray_up_cycle.py, inside its namespaces: the isolation check, the
private mounts, sshd, what a node has before `ray up`, and the processes in sight.

Refuses to start unless it sees a PID namespace of its own and a network with only
loopback: `ray down` kills every Ray process in sight.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / ".venv" / "ray-up-wheels"
HOME = Path("/tmp/home")
SSH_KEY = HOME / ".ssh" / "id_ed25519"
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
    if argv[0].startswith("ray::") or "site-packages/ray/" in line or " -m ray." in line:
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
            f"ray_up_cycle: not in private namespaces (pid {os.getpid()}, {len(seen)} other "
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
