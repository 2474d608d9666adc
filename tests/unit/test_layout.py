"""Every module of the code has its test module at the mirrored path under tests/unit/ (impoola/replay/sum_tree.py:
tests/unit/impoola/replay/test_sum_tree.py; ppo_training.py: tests/unit/test_ppo_training.py), except the modules
listed below, each with where it is tested instead."""

from __future__ import annotations

from pathlib import Path

from support.paths import ROOT

PACKAGES = ("impoola", "benchmark_utils", "plot_utils")

# Modules without a test module of their own, and where they are tested. Shrink this list; do not grow it without a
# reason a reader would accept.
TESTED_ELSEWHERE = {
    # The commands on saved agents: run as a user runs them, on tiny real runs.
    "analyze.py": "tests/e2e/test_analyze.py",
    "evaluate.py": "tests/e2e/test_evaluate.py",
    # The launcher's entry point and SLURM backend: local runs, a real single-node SLURM cluster.
    "benchmark_utils/benchmark.py": "tests/e2e/test_benchmark_local.py, tests/e2e/test_benchmark_slurm.py",
    "benchmark_utils/slurm.py": "tests/e2e/test_benchmark_slurm.py",
    # The plain CleanRL-style loop is the throughput benchmark's baseline arm, timed in its test.
    "benchmark_utils/plain_ppo.py": "tests/unit/benchmark_utils/test_throughput.py",
    # Only its bad input and its documented command are tested (it measures; it decides no number of a run).
    "benchmark_utils/replay_throughput.py": "tests/e2e/test_bad_input.py, tests/e2e/test_readme_commands.py",
    # The option groups, their ranges and the presets: every bad input of every command, and the parsing tests.
    "impoola/envs/options.py": "tests/e2e/test_bad_input.py, tests/unit/impoola/test_cli.py",
    "impoola/evaluation/options.py": "tests/e2e/test_bad_input.py, tests/unit/impoola/test_cli.py",
    "impoola/run/options.py": "tests/e2e/test_bad_input.py, tests/unit/impoola/test_cli.py",
    "impoola/options.py": "tests/e2e/test_bad_input.py",
    "impoola/baselines/options.py": "tests/e2e/test_bad_input.py, tests/unit/impoola/models/test_model_variants.py",
    "impoola/presets.py": "tests/e2e/test_bad_input.py (the train-procgen preset's resolved options)",
    # The agents, the pooling heads and the model table are tested together, per model of the table.
    "impoola/models/heads.py": "tests/unit/impoola/models/test_encoders.py, test_model_variants.py",
    "impoola/models/table.py": "tests/unit/impoola/models/test_model_variants.py",
}


def modules() -> list[str]:
    """The code's modules, relative to the repository root: the scripts at the top and the packages' modules."""
    found = [path.name for path in ROOT.glob("*.py")]
    for package in PACKAGES:
        found += [str(path.relative_to(ROOT)) for path in (ROOT / package).rglob("*.py")]
    return sorted(name for name in found if not name.endswith("__init__.py"))


def mirrored_test(module: str) -> Path:
    path = Path(module)
    return ROOT / "tests" / "unit" / path.parent / f"test_{path.name}"


def test_every_module_has_its_mirrored_test_module_or_is_listed():
    missing = [module for module in modules() if not mirrored_test(module).is_file() and module not in TESTED_ELSEWHERE]
    assert not missing, f"modules without tests/unit/<path>/test_<module>.py: {missing}"


def test_the_exception_list_holds_no_module_that_has_its_test_module_or_is_gone():
    stale = [module for module in TESTED_ELSEWHERE if mirrored_test(module).is_file() or module not in modules()]
    assert not stale, f"drop these from TESTED_ELSEWHERE: {stale}"
    assert all((ROOT / where.split(",")[0].split(" ")[0]).is_file() for where in TESTED_ELSEWHERE.values())


def test_the_rule_finds_a_module_without_its_test_module():
    assert mirrored_test("impoola/replay/sum_tree.py").is_file()
    assert mirrored_test("ppo_training.py") == ROOT / "tests" / "unit" / "test_ppo_training.py"
    assert not mirrored_test("impoola/replay/new_part.py").is_file()
