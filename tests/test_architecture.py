"""The package's shape, checked: rooms that read as the pipeline, each importing only the rooms
below it, no import cycle, no module (nor C source) over 500 lines, and the CEF header built in
one place (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "azs_syslog"

# From the bottom up; a room may import its own modules and the rooms below it.
ROOMS = (
    "base",
    "config",
    "events",
    "encode",
    "queue",
    "inputs",
    "transport",
    "forwarder",
    "lab",
    "cli",
)
BASE = {
    "azs_syslog",
    "azs_syslog.errors",
    "azs_syslog.paths",
    "azs_syslog.fserrors",
    "azs_syslog.switching",
}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _room(module: str) -> str:
    if module in BASE:
        return "base"
    if module == "azs_syslog.__main__":
        return "cli"
    room = module.split(".")[1]
    assert room in ROOMS, f"{module} is in no room: add it to ROOMS and to docs/architecture.md"
    return room


def _resolve(name: str) -> str:
    """The module an import names: the longest prefix that is one of ours."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports that module; `from module import name`
            # imports the module.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(_resolve(n) for n in names if n.startswith("azs_syslog"))
    found.discard(module)
    return {name for name in found if name in MODULES}


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_room_imports_only_the_rooms_below_it() -> None:
    upward = [
        f"{module} ({_room(module)}) imports {target} ({_room(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if ROOMS.index(_room(target)) > ROOMS.index(_room(module))
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    # Tarjan's strongly connected components, iteratively: a component of two or more
    # modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert cycles == []


# The compiled encoder's C sources are held to the same size.
C_SOURCES = sorted([*PACKAGE.rglob("*.c"), *PACKAGE.rglob("*.h")])


@pytest.mark.parametrize(
    "path",
    [*(MODULES[module] for module in sorted(MODULES)), *C_SOURCES],
    ids=[*sorted(MODULES), *(path.name for path in C_SOURCES)],
)
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {lines} lines"


def test_the_c_sources_are_found() -> None:
    assert {path.name for path in C_SOURCES} >= {"_speedups.c", "_speedups.h"}


HEADER = re.compile(r"""f?b?["']CEF:(\{|%|["']\s*\+)""")


def test_the_cef_header_is_built_in_one_module() -> None:
    builders = sorted(
        module
        for module, path in MODULES.items()
        if HEADER.search(path.read_text(encoding="utf-8"))
    )
    assert builders == ["azs_syslog.encode.cef"]
