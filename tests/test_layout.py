"""No import cycle between modules, read from the import statements (ast). The layers themselves are an
import-linter contract (`pyproject.toml`, `lint-imports` in `make test`); `tests/test_architecture.py` checks
that the contract is enforced and that private third-party names stay in the adapters."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pixelcam"


def _imports() -> dict[str, set[str]]:
    graph = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixelcam"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("pixelcam"))
        graph[name] = deps
    return {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}


def test_no_import_cycles():
    graph = _imports()
    # a package imports its own modules from __init__; those edges are not cycles of the design
    edges = {k: {d for d in v if not k.startswith(d + ".")} for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in edges[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep) :] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
