"""The emulator package's structure: its modules import each other without a cycle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import kvs_emulator

PACKAGE = Path(kvs_emulator.__file__).parent
NAME = "kvs_emulator"


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """Sibling modules ``path`` imports anywhere: top level, functions, TYPE_CHECKING.

    Imports inside functions and under TYPE_CHECKING count: they only hide a
    cycle from the interpreter (and from mypy's point of view there is one).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == NAME and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                continue  # above the package: not ours
            if node.level == 1:
                base = node.module
            elif node.module and node.module.split(".")[0] == NAME:
                base = node.module.partition(".")[2] or None
            else:
                continue
            if base:
                found.add(base.split(".")[0])
            else:  # "from . import a, b": the names are modules
                found.update(alias.name for alias in node.names)
    return found & modules


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports."""
    paths = {path.stem: path for path in package.glob("*.py")}
    modules = set(paths)
    return {
        name: _module_imports(path, modules) - {name} for name, path in paths.items()
    }


def test_the_graph_is_read_from_the_source() -> None:
    """The walk sees what the package holds (so an empty graph cannot pass)."""
    graph = import_graph(PACKAGE)
    assert {"server", "emulator", "api", "admin", "playback"} <= graph.keys()
    assert {"admin", "api", "playback", "emulator"} <= graph["server"]
    for routes in ("admin", "api", "playback"):
        assert "emulator" in graph[routes]
        assert "server" not in graph[routes]


def test_no_import_cycle() -> None:
    try:
        order = list(TopologicalSorter(import_graph(PACKAGE)).static_order())
    except CycleError as err:
        pytest.fail(f"import cycle in {NAME}: {' -> '.join(err.args[1])}")
    assert order


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """The check itself: a cycle hidden in a function or TYPE_CHECKING is caught."""
    (tmp_path / "one.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .two import Thing\n",
        encoding="utf-8",
    )
    (tmp_path / "two.py").write_text(
        "def late():\n    from kvs_emulator import one\n", encoding="utf-8"
    )
    graph = import_graph(tmp_path)
    assert graph == {"one": {"two"}, "two": {"one"}}
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())
