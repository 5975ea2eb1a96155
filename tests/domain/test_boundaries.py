"""The layout's promises, kept true: the pure domain imports no infrastructure, the
storage layer no HTTP, and no source file outgrows 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: what the pure domain (actors/domain) may never import, directly or through another module
INFRASTRUCTURE = ("ray", "redis", "hiredis", "starlette", "uvicorn", "aiohttp", "structlog")
#: the HTTP side, which nothing under actors/ may import
HTTP = ("starlette", "uvicorn", "server")
MAX_LINES = 400
#: what counts as source (vendored third-party files, under a `vendor` folder, do not)
SOURCE_SUFFIXES = (".py", ".js", ".css", ".html", ".lua")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports resolved to actors.*)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("actors.<relative>")
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    "path", sorted((REPO / "actors" / "domain").glob("*.py")), ids=lambda p: p.name
)
def test_the_domain_imports_only_itself_msgspec_and_the_standard_library(path: Path) -> None:
    bad = sorted(
        n
        for n in _imports(path)
        if _top(n) in INFRASTRUCTURE
        or (_top(n) in ("actors", "server", "loadgen") and not n.startswith("actors.domain"))
        or (_top(n) not in sys.stdlib_module_names and _top(n) not in ("actors", "msgspec"))
    )
    assert not bad, f"{path.relative_to(REPO)} imports {bad}: the domain must stay pure"


def test_importing_the_whole_domain_loads_no_infrastructure() -> None:
    # transitively too: a fresh interpreter imports every domain module and lists what came in
    modules = [f"actors.domain.{p.stem}" for p in (REPO / "actors" / "domain").glob("*.py")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({INFRASTRUCTURE!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", f"importing actors.domain loaded {out.stdout.strip()}"


@pytest.mark.parametrize(
    "path", sorted((REPO / "actors").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_nothing_under_actors_imports_the_http_side(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if _top(n) in HTTP)
    assert not bad, f"{path.relative_to(REPO)} imports {bad}: actors must not know HTTP"


def _sources() -> list[Path]:
    out: list[Path] = []
    for top in ("actors", "server", "loadgen", "bench"):
        for path in (REPO / top).rglob("*"):
            if path.suffix in SOURCE_SUFFIXES and "vendor" not in path.parts:
                out.append(path)
    return sorted(out)


def test_no_source_file_outside_tests_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in _sources()
        if (n := len(p.read_text(errors="replace").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concept (at most {MAX_LINES} lines each): {long}"
