"""Every `python` command the README shows parses and passes its options' checks as written (nothing runs): a renamed
option or command cannot leave the README behind. A README command of a new entry point fails until it is listed."""

from __future__ import annotations

import re
import shlex

import pytest

import analyze
import dqn_training
import evaluate
import ppo_training
from benchmark_utils import benchmark, gpu_check, op_profile, procgen_parity, replay_throughput, throughput, validate
from impoola.cli import parse_cli
from plot_utils import figures, gallery
from support.paths import ROOT

# The entry point of each command: its options class and, for the training scripts, the algorithm of --preset.
OPTIONS = {
    "ppo_training.py": (ppo_training.Args, "ppo"),
    "dqn_training.py": (dqn_training.Args, "dqn"),
    "evaluate.py": (evaluate.EvaluateOptions, None),
    "analyze.py": (analyze.AnalyzeOptions, None),
    "benchmark_utils.throughput": (throughput.ThroughputOptions, None),
    "benchmark_utils.op_profile": (op_profile.OpProfileOptions, None),
    "benchmark_utils.replay_throughput": (replay_throughput.ReplayThroughputOptions, None),
    "benchmark_utils.gpu_check": (gpu_check.GpuCheckOptions, None),
    "benchmark_utils.benchmark": (benchmark.BenchmarkOptions, None),
    "benchmark_utils.validate": (validate.Args, None),
    "benchmark_utils.procgen_parity": (procgen_parity.Args, None),
    "plot_utils.figures": (figures.FiguresOptions, None),
    "plot_utils.gallery": (gallery.Args, None),
}


def readme_commands() -> list[str]:
    """The `python ...` lines of the README's code blocks, continuation lines joined, comments dropped."""
    lines = (ROOT / "README.md").read_text().splitlines()
    commands, index = [], 0
    while index < len(lines):
        line = lines[index]
        if re.match(r"    python ", line):
            command = line.strip()
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + " " + lines[index].strip()
            commands.append(command)
        index += 1
    return commands


def entry_and_argv(command: str) -> tuple[str, list[str]]:
    """(the command's entry point, its arguments) of `python [-m] X args  # comment`."""
    words = shlex.split(command, comments=True)[1:]
    if words[0] == "-m":
        return words[1], words[2:]
    return words[0], words[1:]


COMMANDS = [c for c in readme_commands() if "..." not in c and "--help" not in c
            and entry_and_argv(c)[0] not in ("pytest", "venv")]


def test_the_readme_shows_commands_of_every_kind():
    shown = {entry_and_argv(command)[0] for command in COMMANDS}
    assert {"ppo_training.py", "dqn_training.py", "evaluate.py", "analyze.py", "benchmark_utils.validate"} <= shown
    assert shown <= set(OPTIONS), f"README commands without an entry in OPTIONS: {sorted(shown - set(OPTIONS))}"


# The files of the user's own that the README's commands read (their contents are read only when they run).
USER_FILES = ("runs/validate/fruitbot__train_procgen__impala_s1__s1/metrics.jsonl", "a.csv", "b.csv")


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_and_passes_its_checks(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a scratch directory holding the user's files; relative outputs land there
    for name in USER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    entry, argv = entry_and_argv(command)
    cls, algorithm = OPTIONS[entry]
    try:
        parse_cli(cls, argv, algorithm)
    except SystemExit:
        pytest.fail(f"{command!r}: {capsys.readouterr().err.strip()}")
