"""The code stays clean by the tools CI trusts: `mypy --strict` on engine/, ruff's linter and formatter
everywhere (their configuration is in pyproject.toml), no import circle in engine/, and no module over 400
lines. Run by pytest so the README's one test command, and therefore CI, enforces them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_engine_is_strictly_typed(tmp_path: Path) -> None:
    result = _tool("mypy", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_ruff_finds_nothing_to_lint() -> None:
    result = _tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing_to_reformat() -> None:
    result = _tool("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def _engine_imports() -> dict[str, set[str]]:
    """Each engine module's imports of engine modules, type-only ones (`if TYPE_CHECKING:`) and function-level
    ones included. `from engine.x import y` names module `engine.x.y` when that is one, else `engine.x`; a
    module's own packages are left out (Python imports them first whatever the module says)."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "engine").rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
        graph[name] = {m for m in found if m in modules and m != name and not name.startswith(m + ".")}
    return graph


def test_no_import_circle_in_the_engine() -> None:
    """A circle (even through a type-only import) means two modules that cannot be read, tested or moved
    apart; `transports` naming `targets.Host` was the last one."""
    graph, state, path = _engine_imports(), dict[str, int](), list[str]()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == [], [" → ".join(circle) for circle in circles]


MAX_MODULE_LINES = 400


def test_no_module_of_the_engine_is_over_400_lines() -> None:
    """A module that outgrows this holds more than one concern: split it along its seam (CONTRIBUTING.md)."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "engine").rglob("*.py")
    }
    assert sizes, "no engine modules found"
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
