"""The package's import graph, for a review of its structure: each module's floor (0 imports no other module
of the project; n imports only modules below n), the cycles, the biggest files and the longest functions.

    python tools/imports.py [ROOT]      # ROOT: a checkout, default the current folder
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("keras_vae", "cli")


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, modules: set[str], package: str) -> set[str]:
    """The project modules a module imports, anywhere in it (lazy imports inside functions count)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            ]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph(root: Path) -> tuple[dict[str, set[str]], dict[str, Path]]:
    paths = {module_name(root, p): p for package in PACKAGES for p in (root / package).rglob("*.py")}
    edges = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges[name] = (
            imported(ast.parse(path.read_text()), set(paths), package) - {name} - {p for p in PACKAGES}
        )
    return edges, paths


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return found


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor; the modules of a cycle share one."""
    component = {v: v for v in edges}
    for members in cycles(edges):
        for v in members:
            component[v] = members[0]
    memo: dict[str, int] = {}

    def floor(c: str) -> int:
        if c not in memo:
            memo[c] = 0
            below = {component[w] for v in edges if component[v] == c for w in edges[v]} - {c}
            memo[c] = 1 + max(map(floor, below)) if below else 0
        return memo[c]

    return {v: floor(component[v]) for v in edges}


def functions(paths: dict[str, Path]) -> list[tuple[int, str]]:
    found = []
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
    return sorted(found, reverse=True)


def main(root: Path) -> None:
    edges, paths = graph(root)
    levels = floors(edges)
    print(f"modules: {len(edges)}, floors: {max(levels.values()) + 1}")
    for level in range(max(levels.values()) + 1):
        print(f"  floor {level}: {', '.join(sorted(v for v in levels if levels[v] == level))}")
    found = cycles(edges)
    print(f"cycles: {len(found)}" + "".join(f"\n  {' <-> '.join(c)}" for c in found))
    commands = {v for v in edges if v.startswith("cli.")}
    entry = "keras_vae.__main__"  # `python -m keras_vae` is the command itself
    into_commands = sorted(
        f"{v} -> {w}" for v in edges if not v.startswith("cli.") and v != entry for w in edges[v] & commands
    )
    print(
        f"library modules importing the CLI: {len(into_commands)}"
        + "".join(f"\n  {edge}" for edge in into_commands)
    )
    sizes = sorted(((len(p.read_text().splitlines()), n) for n, p in paths.items()), reverse=True)[:5]
    print("biggest files: " + ", ".join(f"{n} ({lines})" for lines, n in sizes))
    print("longest functions: " + ", ".join(f"{n} ({lines})" for lines, n in functions(paths)[:5]))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
