"""The nemesis run's picture: answers per second by status, the faults marked on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadgen.nemesis.run import NemesisReport

#: stacked from the bottom, with their colours
SERIES = (("2xx", "tab:green"), ("409", "tab:blue"), ("503", "tab:orange"),
          ("other", "tab:red"), ("no answer", "black"))  # fmt: skip
#: a colour per fault kind
MARKS = {
    "redis-kill": "tab:red",
    "redis-pause": "tab:pink",
    "actor-kill": "tab:purple",
    "fe-kill": "tab:brown",
    "fe-pause": "tab:olive",
    "node-kill": "black",
    "node-pause": "tab:gray",
}


def write_plot(report: NemesisReport, path: Path) -> None:
    """Stacked bars of answers per second; a line at each kill, a band over each pause."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(14, 6), layout="constrained")
    ax = fig.subplots()
    t = [int(str(row["t"])) for row in report.timeline]
    bottom = [0] * len(t)
    for key, colour in SERIES:
        values = [int(str(row.get(key, 0))) for row in report.timeline]
        if any(values):
            ax.bar(t, values, width=1.0, align="edge", bottom=bottom, color=colour, label=key)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    top = max(bottom, default=1) or 1
    for d in report.faults:
        if d.skipped is not None:
            continue
        colour = MARKS.get(d.kind, "tab:red")
        if d.ended > d.started:
            ax.axvspan(d.started, d.ended, color=colour, alpha=0.15)
        ax.axvline(d.started, color=colour, linewidth=1.2, linestyle="--")
        ax.text(d.started, top * 1.01, str(d.n), color=colour, fontsize=7, ha="center")
    handles, labels = ax.get_legend_handles_labels()
    kinds = sorted({d.kind for d in report.faults if d.skipped is None})
    handles += [Line2D([0], [0], color=MARKS[k], linestyle="--") for k in kinds]
    labels += kinds
    ax.legend(handles, labels, loc="upper right", fontsize=8, ncols=2)
    ax.set_xlabel("seconds since the load began")
    ax.set_ylabel("answers / s")
    verdict = "passed" if report.ok else "FAILED"
    ax.set_title(
        f"ticketd nemesis, seed {report.seed}: {sum(report.faults_by_kind.values())} faults, "
        f"{report.verdict.requests:,} requests, audit and checks {verdict}"
    )
    ax.set_ylim(0, top * 1.08)
    ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
