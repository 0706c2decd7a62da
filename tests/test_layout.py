"""The package's layering, read from the import statements (ast): no import cycle between modules, and
`train/` (what trains) imports nothing from evaluation, report or study."""

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


def test_train_imports_nothing_from_evaluation_report_or_study():
    for mod, deps in _imports().items():
        if mod.startswith("pixelcam.train"):
            bad = sorted(
                d for d in deps if d.startswith(("pixelcam.evaluation", "pixelcam.report", "pixelcam.study"))
            )
            assert not bad, f"{mod} imports {bad}"


def test_modules_stay_small():
    big = {
        str(f.relative_to(PKG)): n for f in PKG.rglob("*.py") if (n := len(f.read_text().splitlines())) > 330
    }
    assert not big, f"modules over ~300 lines: {big}"
