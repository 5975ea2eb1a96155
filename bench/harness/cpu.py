"""CPU accounting of a server's process tree by part (front end, route actors, Redis,
Ray, wrk), and the py-spy command that profiles one of them."""

from __future__ import annotations

import os
from pathlib import Path


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every live process below pid (Linux /proc)."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """The process's start time (None if gone or a zombie): with the pid, its identity."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


CPU_PARTS = ["front end", "route actors", "redis", "ray other", "wrk"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK


#: ticketd's supervisor starts its front-end workers as `<python> -m server worker`
TICKETD_WORKER = "-m server worker"


def is_uvicorn_worker(cmd: str) -> bool:
    """A `uvicorn --workers N` child: uvicorn spawns them through multiprocessing."""
    return "--multiprocessing-fork" in cmd


def front_end_workers(root: int) -> list[int]:
    """ticketd's `-m server worker` processes below root (none: root serves HTTP itself)."""
    return [pid for pid in descendants(root) if TICKETD_WORKER in cmdline(pid)]


def uvicorn_workers(root: int) -> list[int]:
    """The worker processes of a uvicorn started with --workers N > 1 at root."""
    return [pid for pid in _children().get(root, []) if is_uvicorn_worker(cmdline(pid))]


def _part(cmd: str, parent: int, root: int) -> str:
    if "RouteActor" in cmd:
        return "route actors"
    if "valkey-server" in cmd or "redis-server" in cmd:
        return "redis"
    if TICKETD_WORKER in cmd:
        return "front end"
    # uvicorn's own children (its workers, multiprocessing's resource tracker); only the
    # root's: Ray's dashboard spawns its modules through multiprocessing too
    if parent == root and "multiprocessing" in cmd:
        return "front end"
    return "ray other"  # raylet, GCS, idle workers, agents


def cpu_by_part(root: int) -> dict[int, tuple[str, float]]:
    """CPU used so far by root (the server) and each of its descendants, by part.

    The front end is root and every process that serves HTTP for it: ticketd's
    `-m server worker` processes, or the uvicorn workers of bench/apps.
    """
    kids = _children()
    out = {root: ("front end", cpu_seconds(root))}
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid in kids.get(parent, []):
            out[pid] = (_part(cmdline(pid), parent, root), cpu_seconds(pid))
            todo.append(pid)
    return out


def py_spy_argv(py_spy: str, pid: int, seconds: float, output: Path, rate: int = 100) -> list[str]:
    """Sample only threads holding the GIL (--gil): Python's own CPU time, where a
    process's idle threads (Ray keeps several) would otherwise blur the picture."""
    return [
        py_spy, "record", "--pid", str(pid), "--duration", f"{seconds:g}", "--rate", str(rate),
        "--gil", "--nonblocking", "--format", "raw", "--nolineno", "--output", str(output),
    ]  # fmt: skip
