"""`python -m loadgen.nemesis`: deploy, sell under faults, judge, report (JSON and PNG)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from loadgen.audit import AuditResult
from loadgen.client import Answer, Reply
from loadgen.config import Config
from loadgen.nemesis.deployment import Deployment
from loadgen.nemesis.inject import Nemesis
from loadgen.nemesis.probe import probe
from loadgen.nemesis.schedule import BOUNDS, FROM_START, KINDS, Fault, plan
from loadgen.nemesis.verdict import Done, Seen, Verdict, judge
from loadgen.runner import Side, run
from loadgen.scenarios import Op

SECRET = "nemesis-secret-0123456789abcdef-0123456789"


class PlannedFault(msgspec.Struct):
    """A fault of the schedule as planned (seconds into the load)."""

    n: int
    at: float
    kind: str
    pause: float


class NemesisReport(msgspec.Struct, kw_only=True):
    """What a nemesis run did and found; `ok` decides the exit status."""

    ok: bool
    seed: int
    replay: str
    duration_s: float
    front_end_workers: int
    worker_nodes: int
    nodes_added: int
    schedule: list[PlannedFault]
    faults: list[Done]
    faults_by_kind: dict[str, int]
    bounds_s: dict[str, float]
    verdict: Verdict
    audit: AuditResult
    loadgen_report: str
    timeline: list[dict[str, object]]
    plot: str | None = None


@dataclass
class History:
    """Every request of the run (the load's and the probes'), in seconds since the start."""

    t0: float = 0.0
    seen: list[Seen] | None = None

    def __post_init__(self) -> None:
        self.seen = []

    def record(self, op: Op, answer: Answer, sent: float, ended: float) -> None:
        assert self.seen is not None
        route = getattr(op, "route_id", None)
        if isinstance(answer, Reply):
            s = Seen(op.kind, route, sent - self.t0, ended - self.t0, answer.status,
                     retry_after=answer.retry_after is not None)  # fmt: skip
        else:
            s = Seen(op.kind, route, sent - self.t0, ended - self.t0, 0, failure=answer.kind)
        self.seen.append(s)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadgen.nemesis",
        description=__doc__,
        epilog="fault kinds: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()),
    )
    p.add_argument("--seed", type=int, help="replays a schedule (default: random, printed)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    p.add_argument("--faults", type=int, help="how many (default: one per 13 s of load)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds")
    p.add_argument("--workers", type=int, default=2, help="front-end workers (2)")
    p.add_argument("--nodes", type=int, default=2, help="Ray worker nodes besides the head (2)")
    p.add_argument("--concurrency", type=int, default=32, help="loadgen connections (32)")
    p.add_argument("--routes", type=int, default=4, help="routes on sale (4)")
    p.add_argument("--seats", type=int, default=2000, help="seats per route (2000)")
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request (10)")
    p.add_argument("--report", type=Path, default=None, help="JSON path (reports/nemesis-*.json)")
    p.add_argument("--keep", action="store_true", help="keep logs and data for a post-mortem")
    return p


def main(argv: list[str] | None = None) -> int:
    from loadgen.nemesis.deployment import prepare_environment

    args = parser().parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(1 << 31)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    count = args.faults if args.faults is not None else max(1, round(args.duration / 13))
    try:
        faults = plan(seed, args.duration, count, kinds)
    except ValueError as exc:
        print(f"python -m loadgen.nemesis: error: {exc}", file=sys.stderr)
        return 2
    report = args.report or Path("reports") / f"nemesis-{time.strftime('%Y%m%d-%H%M%S')}.json"
    replay = f"python -m loadgen.nemesis --seed {seed} --duration {args.duration:g} " + (
        f"--faults {count} --kinds {','.join(kinds)}"
    )
    print(f"nemesis seed {seed}: {len(faults)} faults over {args.duration:g} s; replay with\n"
          f"  {replay}", flush=True)  # fmt: skip
    signal.signal(signal.SIGTERM, _terminated)  # a SIGTERM unwinds through the finally below
    dep = Deployment(prepare_environment(), SECRET, workers=args.workers, nodes=args.nodes)
    ok = False
    try:
        print(f"deploying: Ray head + {args.nodes} nodes, Redis, {args.workers} front-end "
              f"workers (logs in {dep.work}) ...", flush=True)  # fmt: skip
        dep.start()
        signal.signal(signal.SIGTERM, _terminated)  # again: Ray's Cluster installs its own
        # the run on a thread of its own: Ray adds nodes only from the main thread, which
        # does that for the nemesis meanwhile (Deployment.serve_nodes)
        results: list[NemesisReport] = []
        worker = threading.Thread(
            target=lambda: results.append(
                asyncio.run(_run(args, dep, seed, faults, report, replay))
            ),
            name="nemesis-run",
            daemon=True,  # an interrupted run must not hold the exit
        )
        worker.start()
        dep.serve_nodes(until=worker, after=lambda: signal.signal(signal.SIGTERM, _terminated))
        worker.join()
        if not results:
            raise RuntimeError("the nemesis run failed (see above)")
        ok = results[0].ok
        _summary(results[0])
    finally:
        dep.stop()
        dep.cleanup(keep=args.keep or not ok)
        if not ok:
            print(f"logs kept in {dep.work} and {dep.ray_tmp}", flush=True)
    return 0 if ok else 1


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _run(
    args: argparse.Namespace,
    dep: Deployment,
    seed: int,
    faults: list[Fault],
    report_path: Path,
    replay: str,
) -> NemesisReport:
    history = History()
    nemesis: list[Nemesis] = []

    async def alongside(side: Side) -> None:
        history.t0 = side.start
        n = Nemesis(dep, faults, side.start, lambda line: print(line, flush=True))
        nemesis.append(n)
        await asyncio.gather(n.run(), probe(side, history.record))

    config = Config(
        url=dep.url,
        jwt_secret=SECRET,
        scenario="flash-sale",
        duration=args.duration,
        concurrency=args.concurrency,
        report=report_path.with_name(report_path.stem + "-loadgen.json"),
        routes=args.routes,
        seats=args.seats,
        seed=seed,
        timeout=args.timeout,
        progress=False,
    )

    def listener(op: Op, answer: Answer, intended: float, ended: float) -> None:
        history.record(op, answer, intended, ended)

    load = await run(config, alongside=alongside, listener=listener)
    done = sorted(nemesis[0].done if nemesis else [], key=lambda d: d.started)
    assert history.seen is not None
    verdict = judge(history.seen, done, load.routes, load.duration_s)
    if not load.audit.ok:
        verdict.failures.insert(0, f"the audit failed: {list(load.audit.details)[:5]}")
    by_kind: dict[str, int] = {}
    for d in done:
        if d.skipped is None:
            by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
    result = NemesisReport(
        ok=verdict.ok and load.audit.ok,
        seed=seed,
        replay=replay,
        duration_s=load.duration_s,
        front_end_workers=args.workers,
        worker_nodes=args.nodes,
        nodes_added=dep.nodes_added,
        schedule=[PlannedFault(f.n, f.at, f.kind, f.pause) for f in faults],
        faults=done,
        faults_by_kind=dict(sorted(by_kind.items())),
        bounds_s=BOUNDS,
        verdict=verdict,
        audit=load.audit,
        loadgen_report=str(config.report),
        timeline=_timeline(history.seen),
    )
    png = report_path.with_suffix(".png")
    from loadgen.nemesis.plot import write_plot

    write_plot(result, png)
    result.plot = str(png)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
    print(f"report: {report_path} and {png}", flush=True)
    return result


def _timeline(seen: list[Seen]) -> list[dict[str, object]]:
    """Answers per second of the run by what they were (201/202, 409, 503, other, none)."""
    out: dict[int, dict[str, int]] = {}
    for s in seen:
        sec = int(s.done)
        if s.status in (200, 201, 202, 204):
            key = "2xx"
        elif s.status in (409, 503):
            key = str(s.status)
        elif s.status == 0:
            key = "no answer"
        else:
            key = "other"
        bucket = out.setdefault(sec, {})
        bucket[key] = bucket.get(key, 0) + 1
    return [{"t": t, **out[t]} for t in sorted(out)]


def _summary(r: NemesisReport) -> None:
    v = r.verdict
    print(f"\n{'PASSED' if r.ok else 'FAILED'}: seed {r.seed}, {v.requests} requests, "
          f"statuses {v.statuses}", flush=True)  # fmt: skip
    print(f"  audit: checked {r.audit.checked}, lost {r.audit.lost}, double-sold "
          f"{r.audit.double_sold}, phantom {r.audit.phantom}, duplicated {r.audit.duplicated}, "
          f"changed {r.audit.changed}, indeterminate {r.audit.indeterminate}")  # fmt: skip
    print(f"  never silent: {v.silent} unanswered, {v.cut} cut by killed workers, "
          f"{v.unexplained_cuts} unexplained, {v.bad_answers} bad answers")  # fmt: skip
    print(f"  faults injected by kind: {r.faults_by_kind}")
    print(recovery_table(r))
    for line in v.failures:
        print(f"  FAILURE: {line}")
    for line in v.examples[:10]:
        print(f"    e.g. {line}")


def recovery_table(r: NemesisReport) -> str:
    """Per fault kind: how many, recovery median and worst, the bound (markdown)."""
    rows = ["| fault | injected | recovery median (s) | worst (s) | bound (s) | counted from |",
            "|---|--:|--:|--:|--:|---|"]  # fmt: skip
    for kind in KINDS:
        secs = sorted(x.seconds for x in r.verdict.recoveries
                      if x.kind == kind and x.seconds is not None)  # fmt: skip
        if not secs:
            continue
        median = secs[len(secs) // 2]
        start = "the freeze" if kind in FROM_START else "the signal (a pause: SIGCONT)"
        rows.append(f"| {kind} | {r.faults_by_kind.get(kind, 0)} | {median:.2f} | "
                    f"{secs[-1]:.2f} | {BOUNDS[kind]:g} | {start} |")  # fmt: skip
    replaced = [d.replaced_after for d in r.faults if d.replaced_after is not None]
    if replaced:
        rows.append(f"\nfront-end workers replaced after a SIGKILL in {min(replaced):.1f}-"
                    f"{max(replaced):.1f} s")  # fmt: skip
    return "\n".join(rows)
