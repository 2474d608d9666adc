"""The command-line convention: one `error: ...` line and exit 2 for bad input, tyro's messages as one line, signals
parsed, help intact."""

from __future__ import annotations

import pytest

from impoola.cli import parse_cli, tyro_message, user_errors
from ppo_training import Args


@pytest.mark.parametrize(("argv", "message"), [
    (["--encoder", "foo"], "error: invalid encoder 'foo'; valid: impala, impoola, nature\n"),
    (["--env_id", "pong"], "error: invalid env_id 'pong'; valid: bigfish, bossfight, caveflyer, chaser, "),
    (["--pooling", "median"], "error: invalid pooling 'median'; valid: avg, depthwise, flatten, max, softmoe, "),
    (["--num_envs", "abc"], "error: Error parsing --num-envs: invalid integer 'abc'; valid: an integer such as 64"),
    (["--num_envs", "2.5"], "error: Error parsing --num-envs: invalid integer '2.5'"),
    (["--bogus", "1"], "error: Unrecognized options: --bogus"),
    (["--wandb_mode", "loud"], "error: invalid wandb_mode 'loud'; valid: disabled, offline, online\n"),
])
def test_command_line_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        parse_cli(Args, argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("box", [
    ("╭─ Invalid choice ──────╮\n│ invalid choice 'x' for  │\n│ argument '--encoder'.   │\n"
     "│ ─────────────────────── │\n"
     "│ For full helptext, run - --help │\n╰─────────────────────────╯\n"),
    (" Invalid choice \n ------------------------ \n  invalid choice 'x' for \n  argument '--encoder'. \n"
     "  ------------------------\n  For full helptext, run - --help \n"),
], ids=["terminal", "ascii"])
def test_tyro_error_box_becomes_its_message(box):
    assert tyro_message(box) == "invalid choice 'x' for argument '--encoder'."


def test_a_literal_choice_is_worded_as_the_option_groups_word_a_choice():
    box = ("╭─ Invalid choice ─────╮\n│ invalid choice 'x' for argument '--compile-mode'. Expected one of ('None', │\n"
           "│ 'max-autotune', 'default'). │\n│ ──────────── │\n│ For full helptext, run - --help │\n╰──────╯\n")
    assert tyro_message(box) == "invalid compile_mode 'x'; valid: default, max-autotune"


def test_command_line_parses_signals_and_help_still_works(capsys):
    args = parse_cli(Args, ["--checkpoint_signals", "SIGUSR1", "SIGINT"])
    assert args.run.checkpoint_signals == ("SIGUSR1", "SIGINT")
    with pytest.raises(SystemExit) as info:
        parse_cli(Args, ["--help"])
    assert info.value.code == 0 and "--checkpoint-signals" in capsys.readouterr().out


def test_user_errors_collapse_multi_line_messages(capsys):
    with pytest.raises(SystemExit), user_errors():
        raise ValueError("first\n  second")
    assert capsys.readouterr().err == "error: first second\n"
