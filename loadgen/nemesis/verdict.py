"""The checks over a nemesis run's whole history; pure functions of what was recorded.

- silence: every request got an HTTP answer within its client timeout. A timeout is a
  failure. A connection cut is allowed only just after a front-end worker was killed (its
  open connections die with it: no server can answer on them).
- answers: no 5xx but 503, and every 503 says when to retry (Retry-After).
- recovery: after each fault's end (a frozen node: its start), every route acknowledges a
  booking (201 or 202, so its route actor and storage answered, not a front end's memory)
  sent after that moment, within the fault kind's bound (schedule.BOUNDS). Overlapping
  faults share a deadline: one still unhealed when another begins, or beginning before
  another healed, lends it its deadline if later.
- loadgen's audit, over the whole run, is checked by the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from loadgen.nemesis.schedule import BOUNDS, FROM_START

#: how long after a front-end worker's SIGKILL a cut connection is its doing
CUT_WINDOW = 2.0
ACKED = (201, 202)


@dataclass(frozen=True, slots=True)
class Seen:
    """One request of the run, times in seconds since the load began."""

    op: str
    route_id: str | None
    sent: float
    done: float
    status: int  # 0: no HTTP answer
    failure: str = ""  # timeout, connect-error, disconnected
    retry_after: bool = False


class Done(msgspec.Struct, kw_only=True):
    """A fault as it was injected: when (seconds since the load began) and on what."""

    n: int
    kind: str
    target: str
    started: float
    ended: float
    #: front-end worker kills: seconds until the front end had all its workers again
    replaced_after: float | None = None
    skipped: str | None = None  # why nothing was injected (no target then)


class Recovery(msgspec.Struct, kw_only=True):
    n: int
    kind: str
    seconds: float | None  # from the fault's end (or start) to the last route's first ack
    counted_from: str  # "end" (the signal; a pause's SIGCONT) or "start" (a frozen node)
    allowed: float  # the bound, stretched by faults that overlapped it
    slowest_route: str | None
    ok: bool


class Verdict(msgspec.Struct, kw_only=True):
    ok: bool
    requests: int
    statuses: dict[str, int]
    silent: int  # timeouts: requests never answered within the client timeout
    cut: int  # connections cut by a killed front-end worker (allowed)
    unexplained_cuts: int  # connection failures no fault explains
    bad_answers: int  # 5xx but 503, or a 503 without Retry-After
    #: the first few requests behind each failure above, for a post-mortem
    examples: list[str]
    recoveries: list[Recovery]
    failures: list[str]


def _key(s: Seen) -> str:
    return s.failure if s.status == 0 else str(s.status)


def judge(
    seen: Sequence[Seen], faults: Sequence[Done], routes: Sequence[str], end: float
) -> Verdict:
    """Everything but the audit; `end` is when the load stopped (seconds since it began)."""
    failures: list[str] = []
    kills = [f.started for f in faults if f.kind == "fe-kill" and f.skipped is None]
    silent = cut = unexplained = bad = 0
    examples: list[str] = []

    def example(why: str, s: Seen) -> None:
        if len(examples) < 20:
            examples.append(
                f"{why}: {s.op} on {s.route_id} sent at {s.sent:.3f} s, ended {s.done:.3f} s: "
                f"{s.failure or s.status}"
            )

    for s in seen:
        if s.status == 0:
            if s.failure == "timeout":
                silent += 1
                example("unanswered", s)
            elif any(k - 0.05 <= s.done <= k + CUT_WINDOW for k in kills):
                cut += 1
            else:
                unexplained += 1
                example("connection failed", s)
        elif (s.status >= 500 and s.status != 503) or (s.status == 503 and not s.retry_after):
            bad += 1
            example("bad answer", s)
    if silent:
        failures.append(f"{silent} requests got no answer within the client timeout")
    if unexplained:
        failures.append(f"{unexplained} connections failed with no front-end worker killed")
    if bad:
        failures.append(f"{bad} answers were a 5xx other than 503, or a 503 without Retry-After")
    recoveries = recover(seen, faults, routes, end)
    for r in recoveries:
        if not r.ok:
            took = "never" if r.seconds is None else f"in {r.seconds:.1f} s"
            failures.append(
                f"fault {r.n} ({r.kind}): every route serving again {took}, "
                f"allowed {r.allowed:.1f} s (slowest {r.slowest_route})"
            )
    return Verdict(
        ok=not failures,
        requests=len(seen),
        statuses=dict(sorted(Counter(_key(s) for s in seen).items())),
        silent=silent,
        cut=cut,
        unexplained_cuts=unexplained,
        bad_answers=bad,
        examples=examples,
        recoveries=recoveries,
        failures=failures,
    )


def first_acks(
    seen: Sequence[Seen], since: float, routes: Sequence[str]
) -> dict[str, float | None]:
    """Per route, when the first booking sent at or after `since` was acknowledged."""
    first: dict[str, float | None] = dict.fromkeys(routes)
    for s in seen:
        if s.op == "book" and s.status in ACKED and s.sent >= since and s.route_id in first:
            at = first[s.route_id]
            if at is None or s.done < at:
                first[s.route_id] = s.done
    return first


def recover(
    seen: Sequence[Seen], faults: Sequence[Done], routes: Sequence[str], end: float
) -> list[Recovery]:
    """Each injected fault's recovery against its bound (see the module's doc)."""
    done = sorted((f for f in faults if f.skipped is None), key=lambda f: f.started)
    since = {f.n: f.started if f.kind in FROM_START else f.ended for f in done}
    healed: dict[int, float | None] = {}
    slowest: dict[int, str] = {}
    for f in done:
        acks = first_acks(seen, since[f.n], routes)
        missing = [r for r, t in acks.items() if t is None]
        if missing:
            healed[f.n], slowest[f.n] = None, missing[0]
        else:
            slowest[f.n] = max(acks, key=lambda r: acks[r] or 0.0)
            healed[f.n] = acks[slowest[f.n]]
    # Overlapping faults share a deadline: one that was still unhealed when this one
    # began (it may be what holds the routes up), or that began before this one healed,
    # lends its deadline when later; repeated until nothing changes (chains of overlaps).
    until = {n: end if at is None else at for n, at in healed.items()}
    deadline = {f.n: since[f.n] + BOUNDS[f.kind] for f in done}
    changed = True
    while changed:
        changed = False
        for f in done:
            for g in done:
                overlaps = g.started <= until[f.n] and until[g.n] >= f.started
                if g is not f and overlaps and deadline[g.n] > deadline[f.n]:
                    deadline[f.n], changed = deadline[g.n], True
    out = []
    for f in done:
        at = healed[f.n]
        ok = at is not None and at <= deadline[f.n]
        if at is None and deadline[f.n] >= end:
            ok = True  # the run ended before the bound: nothing to judge (kept quiet at the end)
        out.append(
            Recovery(
                n=f.n,
                kind=f.kind,
                seconds=None if at is None else round(at - since[f.n], 3),
                allowed=round(deadline[f.n] - since[f.n], 3),
                counted_from="start" if f.kind in FROM_START else "end",
                slowest_route=slowest[f.n],
                ok=ok,
            )
        )
    return out
