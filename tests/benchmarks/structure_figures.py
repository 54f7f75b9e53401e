"""Structure figures of a checkout: import circles between the project's own modules, imports of
the project's own modules inside function bodies, and the largest modules.

    python tests/benchmarks/structure_figures.py [CHECKOUT]

Run it on two checkouts to compare them. Migrations and tests are left out; an import under
`if TYPE_CHECKING:` does not count.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

OWN = ("apps", "workers", "loupe_client")


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for base, strip in (
        ("apps", root),
        ("workers", root),
        ("clients/python", root / "clients/python"),
    ):
        for path in (root / base).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(strip).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], list[list[str]]]:
    """The project's modules that `name` imports at its top, and its import statements of the
    project's modules inside functions (one each, however many names it takes)."""

    def target(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def names(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]

    top: set[str] = set()
    inside: list[list[str]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                own = []
                for dotted in names(child):
                    found = target(dotted)
                    if found and found != name and found.split(".")[0] in OWN:
                        own.append(found)
                if not own:
                    continue
                if in_function:
                    inside.append(own)  # one import statement, whatever it names
                else:
                    top.update(own)
            elif isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                continue
            else:
                function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                walk(child, in_function or function)

    walk(ast.parse(path.read_text()), False)
    return top, inside


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def main(root: Path) -> None:
    known = modules(root)
    top, inside = {}, {}
    for name, path in known.items():
        top[name], inside[name] = imports(name, path, known)
    every = {name: top[name].union(*inside[name]) for name in known}
    print("import circles between modules (top-level imports):", len(circles(top)))
    found = circles(every)
    print("import circles counting imports inside functions too:", len(found))
    for component in found:
        print("   ", " ".join(component))
    print(
        "imports of the project's own modules inside function bodies:",
        sum(map(len, inside.values())),
    )
    for name, found_inside in sorted(inside.items(), key=lambda item: -len(item[1]))[:8]:
        if found_inside:
            print(f"    {name}: {len(found_inside)}")
    sizes = sorted(((len(p.read_text().splitlines()), n) for n, p in known.items()), reverse=True)
    print("largest modules:", ", ".join(f"{n} {lines}" for lines, n in sizes[:8]))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
