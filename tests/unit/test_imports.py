"""Every module imports on its own, and the first-party import graph has no cycle (lazy imports included)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support.paths import ROOT

PACKAGES = ("impoola", "benchmark_utils", "plot_utils")
SCRIPTS = ("ppo_training", "dqn_training", "evaluate", "analyze")


def first_party_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the packages, plus the training scripts."""
    modules = {name: ROOT / f"{name}.py" for name in SCRIPTS}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): imports there never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every name an import statement anywhere in the module (functions included) may load, resolved."""
    names: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports (not its parent packages, which Python loads first anyway)."""
    modules = first_party_modules()
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = {name for name in imported_names(tree, module, path.name == "__init__.py") if name in modules}
        graph[module] = {t for t in targets if t != module and not module.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path whose first and last module coincide, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_detects_lazy_and_indirect_cycles(tmp_path):
    tree = ast.parse(textwrap.dedent("""
        from typing import TYPE_CHECKING
        from . import sibling
        if TYPE_CHECKING:
            from pkg.c import Never
        def f():
            from pkg.b import thing
    """))
    assert imported_names(tree, "pkg.a", False) >= {"pkg.sibling", "pkg.b", "pkg.b.thing", "typing"}
    assert "pkg.c" not in imported_names(tree, "pkg.a", False)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"impoola.evaluation.episodes", "impoola.evaluation.video", "plot_utils.data", "ppo_training"} <= set(graph)
    assert "impoola.evaluation.tracks" in graph["impoola.evaluation.video"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_on_its_own():
    """Each module imported first, with no first-party module loaded before it (third-party ones stay cached)."""
    script = textwrap.dedent(f"""
        import importlib, sys, warnings
        warnings.simplefilter("ignore")
        failures = []
        for name in {sorted(first_party_modules())!r}:
            for loaded in [m for m in sys.modules if m.split(".")[0] in {(*PACKAGES, *SCRIPTS)!r}]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as error:
                failures.append(f"{{name}}: {{type(error).__name__}}: {{error}}")
        print("\\n".join(failures))
        sys.exit(1 if failures else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
