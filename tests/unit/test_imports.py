"""Every module imports on its own, the first-party import graph has no cycle (lazy and type-level imports
included), and every third-party import of the packages is a dependency pyproject.toml declares (`pip install .`
gives what they import)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import shutil
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest

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


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every name an import statement anywhere in the module may load, resolved: in functions (lazy imports) and
    under `if TYPE_CHECKING:` (a type-level import is a dependency too) alike."""
    names: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
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


def test_find_cycle_detects_lazy_type_level_and_indirect_cycles(tmp_path):
    tree = ast.parse(textwrap.dedent("""
        from typing import TYPE_CHECKING
        from . import sibling
        if TYPE_CHECKING:
            from pkg.c import Never
        def f():
            from pkg.b import thing
    """))
    assert imported_names(tree, "pkg.a", False) >= {"pkg.sibling", "pkg.b", "pkg.b.thing", "pkg.c.Never", "typing"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"impoola.evaluation.episodes", "impoola.evaluation.video", "plot_utils.data", "ppo_training"} <= set(graph)
    assert "impoola.evaluation.registry" in graph["impoola.evaluation.video"]
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


# Declared for what an import loads indirectly: torch.utils.tensorboard needs the tensorboard distribution, and
# imageio-ffmpeg 0.3 (gym3 needs < 0.4) imports pkg_resources without declaring setuptools (gone in setuptools 81).
INDIRECT_DEPENDENCIES = {"tensorboard", "setuptools"}
# Modules that import the training scripts, which only a source checkout has: installed, they refuse in one line.
NEED_THE_SCRIPTS = {"benchmark_utils.throughput", "benchmark_utils.op_profile"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> set[str]:
    """The distribution names of pyproject.toml's [project].dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalized(re.match(r"[A-Za-z0-9_.-]+", requirement).group()) for requirement in project["dependencies"]}


def imported_distributions() -> dict[str, set[str]]:
    """Distribution -> the package modules importing it (third-party imports only; the standard library is not)."""
    modules = first_party_modules()
    own = {name.split(".")[0] for name in modules}
    owners = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for module, path in modules.items():
        if module.split(".")[0] in SCRIPTS:
            continue  # the scripts are not in the installed packages
        for name in imported_names(ast.parse(path.read_text()), module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top and top not in own and top not in sys.stdlib_module_names and top != "__future__":
                assert top in owners, f"{module} imports {top}, which no installed distribution provides"
                for distribution in owners[top]:
                    found.setdefault(normalized(distribution), set()).add(module)
    return found


def test_every_third_party_import_of_the_packages_is_a_declared_dependency():
    imported, declared = imported_distributions(), declared_dependencies()
    assert {"torch", "numpy", "tyro", "procgen-mirror", "pillow"} <= set(imported)
    missing = {dist: sorted(modules) for dist, modules in imported.items() if dist not in declared}
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"
    assert declared - set(imported) == INDIRECT_DEPENDENCIES  # nothing declared that nothing needs


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_imports_every_module(tmp_path):
    """`pip install .` (torch pinned to its CPU-sized wheel) in a venv without this one's packages: every package
    module imports from another folder, and benchmark_utils, installed without the scripts, refuses in one line."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", *PACKAGES):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "torch==2.13.0", str(source)],
                             capture_output=True, text=True, timeout=3000)
    assert install.returncode == 0, install.stderr[-3000:]
    modules = sorted(name for name in first_party_modules()
                     if name.split(".")[0] in PACKAGES and name not in NEED_THE_SCRIPTS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = f"import importlib; [importlib.import_module(m) for m in {modules!r}]; print('imported')"
    result = subprocess.run([python, "-c", script], cwd=elsewhere, capture_output=True, text=True, timeout=600,
                            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert result.stdout.strip() == "imported", result.stderr[-3000:]
    refused = subprocess.run([python, "-m", "benchmark_utils.throughput", "--help"], cwd=elsewhere, capture_output=True,
                             text=True, timeout=600, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr[-3000:]
    assert refused.stderr.startswith("error: cannot import dqn_training: the benchmarks need the training scripts")
