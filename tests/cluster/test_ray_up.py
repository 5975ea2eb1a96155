"""`ray up` → book → `ray down` on this machine leaves no ticketd process behind (issue 12).

The cycle runs in tests/cluster/ray_up_cycle.py, as root, in Linux namespaces of its own (see its
docstring): `ray down` runs `ray stop`, which would otherwise kill every Ray process of
the machine. It needs root, openssh-server and rsync, so `make test` skips it;
`make test-ray-up` installs those and runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CYCLE = Path(__file__).with_name("ray_up_cycle.py")

pytestmark = pytest.mark.skipif(
    os.environ.get("TICKETD_RAY_UP_TEST") != "1",
    reason="ray up/down cycle: needs root, Linux namespaces and openssh-server; "
    "run `make test-ray-up`",
)


def _summary(res: dict[str, Any]) -> str:
    return json.dumps(res, indent=1, sort_keys=True)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ray_up_book_ray_down_leaves_no_ticketd_process(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the ray up/down cycle needs root (unshare, a private sshd): run it as root")
    out = tmp_path / "result.json"
    # the cycle bounds itself (timeout + unshare --kill-child); this bound is for pip/apt
    proc = subprocess.run(
        [sys.executable, str(CYCLE), "--out", str(out)], timeout=1100, check=False
    )
    assert out.exists(), f"the cycle wrote no result (exit {proc.returncode})"
    res: dict[str, Any] = json.loads(out.read_text())
    why = _summary(res)
    timings = res["timings"]
    print(f"ray up/down timings (s): {json.dumps(timings)}")
    print(f"/readyz while Ray was gone: {res.get('readyz_ray_gone')}")
    sale = res.get("flash_sale", {})
    print(
        f"sale: {sale.get('acknowledged_bookings')} acknowledged, {sale.get('throughput_rps')} rps"
    )
    assert res["failures"] == [] and proc.returncode == 0, why
    # booked and confirmed through the front end `ray up` started, and a sale audited clean
    assert res["booking"]["status"] == "confirmed", why
    assert res["flash_sale"]["audit"]["ok"], why
    assert res["flash_sale"]["acknowledged_bookings"] > 0, why
    # after `ray down`: Ray gone, the front end gone by itself and saying why, Redis
    # (which `ray down` leaves by design) stopped as an operator would, ports free
    assert 0 <= timings["no_ray_to_no_front_end"] <= 50, why
    assert 0 <= timings["ray_down_to_no_ray"] <= timings["ray_down"] + 1, why
    assert res["front_end_said"], why
    # while its Ray was gone the front end still answered /readyz, 503
    assert [a.split()[0] for a in res["readyz_ray_gone"]] == ["503", "503"], why
    assert set(res["left_after"]) <= {"ssh"}, why
    assert all(res["ports_free"].values()), why
