"""Summarise a py-spy `--format raw` profile (collapsed stacks) as percentages.

    .venv/bin/python bench/pyspy_summary.py profile.txt [--top 15]

Prints where the sampled (non-idle) time goes: by function itself ("self"),
including callees ("total"), and by package. Used by bench/throughput.py
--profile; the raw files also open in speedscope (https://www.speedscope.app).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame.strip())
        if m is None:
            out.append((frame.strip(), ""))
        else:
            out.append((m.group("func"), m.group("file")))
    return out


def package(file: str) -> str:
    """A coarse owner for a source file: our packages by module, libraries by name."""
    if not file:
        return "(other)"
    parts = Path(file).parts
    for mark in ("site-packages", "dist-packages"):
        if mark in parts:
            rest = parts[parts.index(mark) + 1 :]
            return rest[0].removesuffix(".py") if rest else file
    for ours in ("server", "actors", "bench"):
        if ours in parts:
            return f"{ours}/{parts[-1]}"
    if "python3" in file or file.startswith("<"):
        # py-spy shortens stdlib paths, e.g. "asyncio/events.py"
        return "stdlib:" + (parts[0].removesuffix(".py") if parts else file)
    return parts[0].removesuffix(".py") if parts else file


def load(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """(frames root-first, sample count) per distinct stack."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((_frames(stack), int(count)))
    return stacks


def summarise(path: Path, top: int = 15, seconds: float | None = None, rate: int = 100) -> str:
    """The report as text."""
    stacks = load(path)
    total = sum(c for _, c in stacks)
    if not total:
        return f"{path.name}: no samples\n"
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkg: Counter[str] = Counter()
    for frames, count in stacks:
        frames = [f for f in frames if not f[0].startswith(("thread (", "process "))]
        if not frames:
            continue
        func, file = frames[-1]
        self_t[f"{func} ({file})"] += count
        pkg[package(file)] += count
        for name in {f"{fn} ({fl})" for fn, fl in frames}:
            incl[name] += count
    lines = [f"{path.name}: {total} samples"]
    if seconds:
        lines[0] += (
            f" over {seconds:g} s at {rate} Hz = {total / (seconds * rate):.0%} of one core busy"
        )
    lines.append("  self time by package:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in pkg.most_common(top)]
    lines.append("  self time by function:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in self_t.most_common(top)]
    lines.append("  total time (function and its callees):")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in incl.most_common(top + 10)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=None, help="recording duration")
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    for p in args.profiles:
        print(summarise(p, args.top, args.seconds, args.rate))


if __name__ == "__main__":
    main()
