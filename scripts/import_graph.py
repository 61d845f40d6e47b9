#!/usr/bin/env python3
"""Print the first-party import graph: modules, edges, cycles, and a layered Mermaid diagram.

    scripts/import_graph.py [--root DIR] [--mermaid]

Reads the source with ``ast`` (every import, also inside functions and ``TYPE_CHECKING``
blocks). ``tests/test_architecture.py`` uses the same functions to pin "no cycles";
``docs/architecture.md`` shows the diagram.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sources(root: Path) -> list[Path]:
    """The source roots of core and every backend under ``root``."""
    return [root / "core" / "src", *sorted((root / "backends").glob("*/src"))]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for core and every backend."""
    found: dict[str, Path] = {}
    for src in sources(root):
        for path in src.rglob("*.py"):
            if "_template" in path.parts or path.name.startswith("."):
                continue
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``module → modules it imports`` for every first-party module."""
    modules_ = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules_}
    for name, path in modules_.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules_ else base
                           for a in node.names]  # fmt: skip
            for target in targets:
                while target and target not in modules_:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def group(module: str) -> str:
    """The box a module is drawn in: ``prelabel._engine``, ``prelabel.results``, a backend…"""
    parts = module.split(".")
    if parts[0] != "prelabel":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else "prelabel"


def mermaid(graph: dict[str, set[str]]) -> str:
    """Edges between groups (a module's imports of its own group left out)."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for source, targets in graph.items():
        for target in targets:
            a, b = group(source), group(target)
            if a != b:
                edges[(a, b)] += 1
    lines = ["graph LR"]
    lines += [
        f'  {a.replace(".", "_")}["{a}"] --> {b.replace(".", "_")}["{b}"]' for a, b in sorted(edges)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository checkout to read")
    parser.add_argument("--mermaid", action="store_true", help="print the group diagram")
    args = parser.parse_args()
    graph = import_graph(args.root)
    found = cycles(graph)
    print(
        f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, {len(found)} cycles"
    )
    for component in found:
        print("  cycle:", " <-> ".join(component))
    if args.mermaid:
        print(mermaid(graph))


if __name__ == "__main__":
    main()
