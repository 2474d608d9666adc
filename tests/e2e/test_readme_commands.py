"""Every `python` command the README and the pages of docs/ show parses and passes its options' checks as written
(nothing runs): a renamed option or command cannot leave the documentation behind. A documented command of a new entry
point fails until it is listed. Every relative link and image of these pages points at a file that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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


# The README and the reference pages it links to.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands(page: Path) -> list[str]:
    """The `python ...` lines of a page's code blocks, continuation lines joined, comments dropped."""
    lines = page.read_text().splitlines()
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


def checkable(command: str) -> bool:
    """Commands with a placeholder (`...`), `--help` and the ones of other programs are not parsed."""
    return "..." not in command and "--help" not in command and entry_and_argv(command)[0] not in ("pytest", "venv")


COMMANDS = [c for page in PAGES for c in shown_commands(page) if checkable(c)]


def unknown_entry_points(commands: list[str]) -> list[str]:
    """The entry points of `commands` that OPTIONS does not know (their commands could not be checked)."""
    return sorted({entry_and_argv(command)[0] for command in commands} - set(OPTIONS))


def test_every_entry_point_is_shown_and_known():
    shown = {entry_and_argv(command)[0] for command in COMMANDS}
    in_readme = {entry_and_argv(command)[0] for command in shown_commands(ROOT / "README.md") if checkable(command)}
    assert {"ppo_training.py", "dqn_training.py", "benchmark_utils.validate"} <= in_readme
    unknown = unknown_entry_points(COMMANDS)
    assert not unknown, f"documented commands without an entry in OPTIONS: {unknown}"
    assert set(OPTIONS) <= shown, f"entry points no page shows a command of: {sorted(set(OPTIONS) - shown)}"


def test_the_docs_pages_are_found_and_their_commands_read(tmp_path):
    assert {"validation.md", "speed.md", "analyses.md"} <= {page.name for page in PAGES}
    page = tmp_path / "page.md"
    page.write_text("text\n\n    python evaluate.py runs/x \\\n        --num_episodes 2   # comment\n"
                    "    pip install x\n")
    assert shown_commands(page) == ["python evaluate.py runs/x  --num_episodes 2   # comment"]
    assert entry_and_argv(shown_commands(page)[0]) == ("evaluate.py", ["runs/x", "--num_episodes", "2"])


def test_a_command_of_an_unknown_entry_point_is_named():
    commands = ["python -m benchmark_utils.new_tool --x 1", "python evaluate.py runs/x", "python new_script.py"]
    assert unknown_entry_points(commands) == ["benchmark_utils.new_tool", "new_script.py"]


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    """The relative links and images of `page` whose file, or whose heading anchor, does not exist."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_and_images_resolve(page):
    """Links and images between the README and docs/ point at files and headings that exist."""
    broken = broken_links(page)
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Speed: options (`--compile`)\n")
    page = tmp_path / "page.md"
    page.write_text("# Top\n[a](other.md) [b](other.md#speed-options---compile) [c](#top) ![d](gone.png) "
                    "[e](other.md#nowhere) [f](#missing) [g](https://example.org/x)\n")
    assert broken_links(page) == ["gone.png", "other.md#nowhere", "#missing"]


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert all(f"](docs/{page.name}" in readme for page in PAGES[1:])


# The files of the user's own that the documented commands read (their contents are read only when they run).
USER_FILES = (*(f"runs/validate/fruitbot__train_procgen__impala_s1_samepool_glorot__s{seed}/metrics.jsonl"
                for seed in (1, 2)), "a.csv", "b.csv")


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command_parses_and_passes_its_checks(command, tmp_path, monkeypatch, capsys):
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
