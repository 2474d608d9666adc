"""The code passes the linter with the rules of pyproject.toml ([tool.ruff]), and those rules catch what they name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.paths import ROOT


def ruff(*args: str, source: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=ROOT, input=source,
                          capture_output=True, text=True, timeout=120)


def test_the_repository_passes_ruff():
    result = ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("source", "rule"), [
    ("x = 1\n" + "y = '" + "a" * 120 + "'\n", "E501"),  # the line length, 120
    ("import os\n", "F401"),  # an unused import
    ("def f():\n    return undefined_name\n", "F821"),
    ("x = 1 \n", "W291"),  # trailing whitespace
])
def test_the_configured_rules_catch_a_violation(source, rule):
    # As a new module of the package would be linted: the project's configuration, not ruff's defaults.
    result = ruff("--stdin-filename", "impoola/new_module.py", "-", source=source)
    assert result.returncode == 1 and rule in result.stdout, result.stdout + result.stderr


def test_a_line_of_120_characters_is_allowed():
    result = ruff("--stdin-filename", "impoola/new_module.py", "-", source="y = '" + "a" * 114 + "'\n")
    assert result.returncode == 0, result.stdout + result.stderr
