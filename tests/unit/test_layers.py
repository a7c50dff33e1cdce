"""The shape of the source tree: layers point one way, no import cycles, small modules.

Read from the source with ``ast`` (every import, also inside functions and under
``TYPE_CHECKING``), so a cycle hidden from the interpreter is still one here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 400

# package -> the packages it may import (besides itself). Top-level wiring (cli, server,
# runtime, config, metrics, logging, tasks) may import anything and is imported by adapters
# only for config, metrics and tasks.
WIRING = {"config", "metrics", "tasks", "logging"}
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "audio": set(),
    "auth": {"domain"},
    "store": {"domain"},
    "bus": {"domain", "tasks"},
    "services": {"domain", "auth", "store", "bus"},
    "rtc": {"domain"},
    "sipleg": {"domain"},
    "webhooks": {"domain", "tasks"},
    "assistants": {"domain", "audio"},
    "client": {"domain", "audio"},
    "api": {"domain", "auth", "store", "bus", "services", "metrics"},
    "sip": {"domain", "auth", "store", "bus", "services", "config", "metrics", "sipleg"},
    "gateway": {
        "domain",
        "auth",
        "rtc",
        "store",
        "bus",
        "services",
        "webhooks",
        "assistants",
        "config",
        "metrics",
    },
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module_name(p) for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                # ``from voxgate.rtc import frames`` imports the module voxgate.rtc.frames
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in modules] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t.startswith("voxgate.") and t != name}
    return graph


def _package(module: str) -> str:
    return module.split(".")[1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = _imports()
    assert len(graph) > 40  # the walk really read the tree
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_one_way() -> None:
    wrong = []
    for module, targets in _imports().items():
        package = _package(module)
        if package not in ALLOWED:
            continue  # top-level wiring
        for target in targets:
            other = _package(target)
            if other != package and other not in ALLOWED[package]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
