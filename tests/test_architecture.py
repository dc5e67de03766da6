"""The written rules of the codebase's shape, checked over src/: no import cycle, no private name crossing a
module boundary, no module over 500 lines.

The arrows between packages (deploy ↛ training and so on) are import-linter contracts in pyproject.toml, run by
`make test` as `lint-imports`; the cycle check here is the stricter one (any cycle, not only between siblings).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "deepwright"
MAX_LINES = 500


def module_name(path: Path) -> str:
    """The dotted name of the module at `path` (a package's `__init__.py` names the package)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> list[Path]:
    """Every Python module of the package, sorted."""
    return sorted(PACKAGE.rglob("*.py"))


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycle_anywhere() -> None:
    # grimp counts imports inside functions and under TYPE_CHECKING, so a cycle held apart by a lazy import shows.
    graph = grimp.build_graph("deepwright", cache_dir=None)
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles (each line: modules that reach each other through imports):\n" + "\n".join(
        " ↔ ".join(group) for group in cycles
    )


def test_no_private_name_imported_from_another_module() -> None:
    crossings = []
    for path in sources():
        here = module_name(path)
        package = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source == here:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    crossings.append(f"{here} (line {node.lineno}) imports {alias.name} from {source}")
    assert crossings == [], "private names imported across modules:\n" + "\n".join(crossings)


def test_no_module_over_500_lines() -> None:
    lengths = {module_name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in sources()}
    long = {name: count for name, count in lengths.items() if count > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
