"""The one command-line convention of every entry point: tyro over an options dataclass (`--a_b` and `--a-b`),
and one error path: bad input, a parse error or a file-system error is one `error: ...` line and exit status 2."""

from __future__ import annotations

import contextlib
import errno
import io
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import tyro

from impoola.options import from_flat
from impoola.presets import preset_values

EXIT_USAGE = 2
T = TypeVar("T")


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def size_text(nbytes: float) -> str:
    """A size in the largest binary unit that keeps it >= 1 (812 bytes, 23.5 MiB, 11.4 GiB): never `0.0 GiB`."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024:
            return f"{nbytes:.0f} bytes" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"


def os_error_message(exc: OSError) -> str:
    """A file-system error as one line naming the path: `cannot write 'runs/x': No space left on device`."""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__
    if exc.filename is None:
        return one_line(f"file-system error: {reason}")
    target = f" (to {str(exc.filename2)!r})" if exc.filename2 is not None else ""
    return one_line(f"cannot use {str(exc.filename)!r}{target}: {reason}")


def parse_choices(name: str, value: str, valid: Sequence[str]) -> list[str]:
    """Comma-separated choices (order kept, duplicates dropped); a one-line ValueError names a bad one."""
    chosen = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    for item in chosen:
        if item not in valid:
            raise ValueError(f"invalid {name} {item!r}; valid: {', '.join(valid)}")
    if not chosen:
        raise ValueError(f"invalid {name} {value!r}; valid: a comma-separated list of {', '.join(valid)}")
    return chosen


def fail(message: object) -> None:
    """Print `error: <message>` as one line on stderr and exit with status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE) from None


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input (ValueError) and file-system errors (OSError, naming the path) into one line and exit 2."""
    try:
        yield
    except ValueError as exc:
        fail(exc)
    except OSError as exc:
        fail(os_error_message(exc))


def parse_cli(cls: type[T], argv: Sequence[str] | None = None, algorithm: str | None = None,
              description: str | None = None) -> T:
    """The options of `cls` from the command line (flags without their group's prefix, both spellings).

    With `algorithm`, `--preset NAME` first sets the preset's values as defaults (impoola.presets). Parse errors
    and invalid values are one `error: ...` line and exit status 2; `--help` prints the grouped help.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    with user_errors():
        preset = _preset_name(argv) if algorithm is not None else None
        default = from_flat(cls, **preset_values(preset, algorithm)) if preset is not None else None
    captured, help_text = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(help_text):
            args = tyro.cli(tyro.conf.OmitArgPrefixes[cls], args=argv, default=default, description=description)
    except SystemExit as exc:
        if exc.code not in (0, None):
            fail(tyro_message(captured.getvalue()))
        sys.stdout.write(ordered_help(help_text.getvalue()) if algorithm is not None else help_text.getvalue())
        sys.stderr.write(captured.getvalue())
        raise
    except ValueError as exc:  # a group's own check, raised while tyro builds it
        fail(exc)
    sys.stderr.write(captured.getvalue())  # warnings, if any
    return args


# --help of a training script: tyro prints the script's own options (its algorithm's hyperparameters) first;
# they go after the environment, model and baselines groups.
HELP_SECTIONS = ("env", "model", "baselines", "algorithm", "run", "eval", "logging", "speed")
_HELP_TITLE = re.compile(r"^ (\S+)")
_HELP_RULE = re.compile(r"^ -{10,}")


def ordered_help(text: str) -> str:
    """tyro's help with its sections in the order of HELP_SECTIONS, the script's own options titled `algorithm`.

    A section starts with its title line (` env options`) above a rule (` -----`) and runs to the next one."""
    lines = text.splitlines(keepends=True)
    starts = [i for i in range(len(lines) - 1) if _HELP_TITLE.match(lines[i]) and _HELP_RULE.match(lines[i + 1])]
    if not starts:
        return text
    sections = [lines[start:end] for start, end in zip(starts, [*starts[1:], len(lines)])]
    for section in sections:
        if section[0].startswith(" options "):  # the script's own options; the title line keeps its width
            section[0] = section[0].replace(" options" + " " * 10, " algorithm options", 1)

    def rank(section: list[str]) -> int:
        title = _HELP_TITLE.match(section[0]).group(1)
        return HELP_SECTIONS.index(title) if title in HELP_SECTIONS else len(HELP_SECTIONS)

    return "".join(lines[:starts[0]] + [line for section in sorted(sections, key=rank) for line in section])


def run_command(cls: type[T], main: Callable[[T], object], argv: Sequence[str] | None = None,
                algorithm: str | None = None, description: str | None = None) -> int:
    """Parse the options of `cls` (with `algorithm`: its presets too), run `main(options)` with the shared error
    path and return the exit status: 0 (or `main`'s int result), 2 after a one-line error, 0 after --help."""
    try:
        options = parse_cli(cls, argv, algorithm, description)
        with user_errors():
            result = main(options)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return result if isinstance(result, int) else 0


def _preset_name(argv: list[str]) -> str | None:
    """The value of `--preset NAME` / `--preset=NAME` in `argv` (the last one given), else None."""
    name = None
    for i, arg in enumerate(argv):
        if arg == "--preset":
            if i + 1 >= len(argv):
                raise ValueError("invalid --preset without a name; valid: --preset NAME")
            name = argv[i + 1]
        elif arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
    return name


def tyro_message(text: str) -> str:
    """The message in tyro's error box (after its title, up to the next rule), as one line."""
    lines = [line.strip(" │╭╮╰╯") for line in text.splitlines()][1:]  # the title line (or top border) goes
    is_rule = [not set(line) - set("-─ ") for line in lines]
    start = is_rule.index(False) if False in is_rule else len(lines)
    end = is_rule.index(True, start) if True in is_rule[start:] else len(lines)
    message = one_line(" ".join(lines[start:end])) or "invalid command line"
    choice = _TYRO_CHOICE.match(message)
    if choice:  # a Literal's choice, worded as impoola.options.check_choice words it (sorted: tyro's order varies)
        valid = sorted(value for value in re.findall(r"'([^']*)'", choice["valid"]) if value != "None")
        return f"invalid {choice['flag'].replace('-', '_')} {choice['value']!r}; valid: {', '.join(valid)}"
    return re.sub(r"^Error parsing [A-Za-z_][\w.]*: (?=invalid )", "", message)  # a group's own check: its message


_TYRO_CHOICE = re.compile(r"^invalid choice '(?P<value>.*)' for argument '--(?P<flag>[\w.-]+)'\. "
                          r"Expected one of \((?P<valid>.*)\)\.?$")
