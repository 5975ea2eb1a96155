"""`ray up` → book → `ray down` on this machine, and nothing of ticketd left behind.

tests/cluster/test_ray_up.py runs this (`make test-ray-up`, as root); it also runs by hand:

    .venv/bin/python tests/cluster/ray_up_cycle.py --out result.json

`ray down` runs `ray stop` on the head, which kills every Ray process it can see, so
the whole cycle runs in Linux namespaces of its own (`unshare`): a PID namespace where
`ray stop` sees only the cycle's processes, a network namespace with only loopback
(ports cannot clash with anyone's; nothing leaves the machine), and a mount namespace
where /tmp, /run and /dev/shm are private and root's home (by a private copy of
/etc/passwd) is a temp dir, so the machine's ~/.ssh, ~/.ray and /etc/ssh stay as they
are. In there: a private sshd on 127.0.0.1 with its own keys and config, then the
repo's cluster.yaml (a copy with the machine-specific values substituted: head
127.0.0.1 and no workers, ssh user root, Redis on the head switched on as its comment
describes), `ray up`, a booking and a short loadgen sale audited through the front end,
`ray down`; then the front end, Ray and (stopped as an operator would, since `ray down`
never stops Redis) Redis must be gone and their ports free.

The node installs ticketd without network (there is none in the namespace): pip and uv
find the wheels of cluster.yaml's setup commands in a wheelhouse downloaded beforehand
(.venv/ray-up-wheels), as a machine with a package mirror would.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / ".venv" / "ray-up-wheels"
#: how long the whole cycle may take before `timeout` kills the namespace (and with its
#: PID 1 gone, the kernel kills every process in it)
OVERALL_SECONDS = 900
PACKAGES = {"/usr/sbin/sshd": "openssh-server", "/usr/bin/rsync": "rsync"}


def ensure_packages() -> None:
    """Install openssh-server and rsync if missing, without starting the machine's sshd."""
    missing = [pkg for path, pkg in PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    # policy-rc.d answering 101 keeps the package's maintainer scripts from starting the
    # service (Debian's invoke-rc.d and deb-systemd-invoke both ask it)
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\n# ticketd make test-ray-up: start no service\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        subprocess.run(install, check=True, env=env, timeout=600)
    finally:
        if ours:
            policy.unlink()


def node_requirements() -> list[str]:
    """What cluster.yaml's setup commands install on a node: uv, ticketd's deps, ray[default]."""
    setup = " ".join(yaml.safe_load((REPO / "cluster.yaml").read_text())["setup_commands"])
    pins = re.findall(r"\b(?:uv|ray\[default\])==[\w.]+", setup)
    assert len(pins) == 2, f"cluster.yaml's setup commands changed: {pins}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    return [*pins, *project["project"]["dependencies"], *build, "pip"]


def ensure_wheels() -> None:
    """Download the node's wheels once (the namespace has no network)."""
    wanted = "\n".join(node_requirements())
    stamp = WHEELS / "requirements.txt"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    req = WHEELS / "requirements.in"
    req.write_text(wanted)
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(WHEELS), "-r", str(req)]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        sys.exit(f"ray_up_cycle: pip download failed:\n{done.stderr[-3000:]}")
    stamp.write_text(wanted)


def outer(out: Path, keep: bool) -> int:
    """Prepare, run the cycle in fresh namespaces, copy its result to `out`."""
    if os.geteuid() != 0:
        sys.exit(
            "ray_up_cycle: needs root (Linux namespaces, a private sshd); use make test-ray-up"
        )
    ensure_packages()
    ensure_wheels()
    work = Path(tempfile.mkdtemp(prefix="ticketd-rayup-", dir="/var/tmp"))
    inner = f"{sys.executable} {Path(__file__).resolve()} --inside {work}; exit $?"
    # --kill-child: if unshare dies (timeout), the namespace's PID 1 gets SIGKILL, and the
    # kernel then kills everything else in the namespace: nothing can outlive the run
    cmd = ["timeout", "--kill-after=10", str(OVERALL_SECONDS)]
    cmd += ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount"]
    # bash as PID 1 reaps the orphans (the front end started with setsid nohup ends as one)
    cmd += ["--", "/bin/bash", "-c", inner]
    started = time.monotonic()
    code = subprocess.run(cmd, check=False).returncode
    result_file = work / "result.json"
    res: dict[str, Any] = json.loads(result_file.read_text()) if result_file.exists() else {}
    res.setdefault("failures", [] if code == 0 else [f"the cycle exited {code}, no result"])
    res["exit_code"] = code
    res["elapsed_seconds"] = round(time.monotonic() - started, 1)
    res["work_dir"] = str(work) if keep else None
    out.write_text(json.dumps(res, indent=2, sort_keys=True))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if code == 0 and not res["failures"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where to write the JSON result")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    if args.inside:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ray_up_inside import run

        return run(args.inside)
    if not args.out:
        parser.error("--out is required")
    return outer(args.out, args.keep)


if __name__ == "__main__":
    sys.exit(main())
