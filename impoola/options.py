"""How options declare and check their valid values: ranges and choices beside each field, self-validating option
groups.

An option group is a dataclass deriving from `Checked`: building it checks every field against the range its
annotation declares (`Annotated[float, Range(0, 1)]`, or the `Int`/`Float` helpers), rejects non-finite floats
unless the range allows them, checks every choice against its `Literal[...]` (or, for a `Choice(registry)`, against
the registry as it is then), then runs the group's own `check()` for rules between fields. Any failure is a
one-line ValueError naming the option, the value and what is valid, so an invalid group cannot exist. The
command line (impoola.cli) shows each range and each choice in the option's help and parses integers written as
`25e6`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass
from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal, TypeVar

import tyro

T = TypeVar("T")


def _number(value: float) -> str:
    if value == 2**32:
        return "2^32"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """Valid numbers low..high; `low_open`/`high_open` exclude the ends; `finite=False` allows inf and nan."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True
    integer: bool = False

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {_number(self.high)}"
        return f"a finite {kind[2:]}" if self.finite else kind

    def contains(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return not self.finite and (self.low is None or value >= self.low) and (
                self.high is None or value <= self.high)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def check(self, name: str, value: Any) -> None:
        """A one-line ValueError unless `value` is in the range (None passes: optional options)."""
        if value is not None and not self.contains(value):
            raise ValueError(f"invalid {name} {value!r}; valid: {self}")


def parse_int(text: str) -> int:
    """An integer from its decimal spelling or an integral scientific notation such as 25e6 or 1.5e3."""
    text = text.strip().replace("_", "")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid integer {text!r}; valid: an integer such as 64, 1000000 or 25e6") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"invalid integer {text!r}; valid: an integer such as 64, 1000000 or 25e6")
    return int(value)


_INT_SPEC = tyro.constructors.PrimitiveConstructorSpec(
    nargs=1, metavar="INT", instance_from_str=lambda args: parse_int(args[0]),
    is_instance=lambda value: isinstance(value, int) and not isinstance(value, bool),
    str_from_instance=lambda value: [str(value)],
)


def _hint(valid: Range):
    return tyro.conf.arg(help_behavior_hint=lambda default: f"(valid: {valid}; default: {default})")


def Int(low: float | None = None, high: float | None = None, *, high_open: bool = False) -> Any:  # noqa: N802
    """An integer option in [low, high] (`high_open`: [low, high)), parsed from 25e6-style spellings too."""
    valid = Range(low, high, high_open=high_open, integer=True)
    return Annotated[int, _INT_SPEC, valid, _hint(valid)]


def Float(low: float | None = None, high: float | None = None, *, low_open: bool = False,  # noqa: N802
          high_open: bool = False) -> Any:
    """A finite float option in the range low..high (ends included unless open)."""
    valid = Range(low, high, low_open, high_open)
    return Annotated[float, valid, _hint(valid)]


@functools.cache
def declared_ranges(cls: type) -> dict[str, Range | None]:
    """Each field's declared Range (None: a float field without one must still be finite; other types: absent)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    ranges: dict[str, Range | None] = {}
    for field in dataclasses.fields(cls):
        found = _range_in(hints[field.name])
        if found is not None or _has_float(hints[field.name]):
            ranges[field.name] = found
    return ranges


@functools.cache
def needs_values(cls: type) -> dict[str, tuple]:
    """The list options of `cls` whose default holds values, with it: an empty list there leaves the command
    nothing to do. (An optional list's check says whether empty means something, e.g. --gpus: no GPU.)"""
    defaults = {f.name: _field_default(f) for f in dataclasses.fields(cls)}
    return {name: value for name, value in defaults.items() if isinstance(value, tuple) and value}


def _range_in(hint: Any) -> Range | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Range)), None)
    for arg in typing.get_args(hint):
        found = _range_in(arg)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, eq=False)  # hashed by identity, as typing hashes an annotation's metadata
class OneOf:
    """The valid values of a choice: the keys of a registry, read when a group is checked, so that an entry added
    after the option was declared (a test's extra encoder family) is valid too."""

    registry: Collection[str]


def Choice(registry: Collection[str]) -> Any:  # noqa: N802
    """A choice among the entries of `registry` (a dict's keys or a tuple): a Literal of them for the command line,
    whose --help lists them, checked against the registry itself."""
    return Annotated[Literal[tuple(registry)], OneOf(registry)]


@functools.cache
def declared_choices(cls: type) -> dict[str, OneOf | tuple]:
    """Each choice field's valid values: its `OneOf` registry, or the values of its Literal (also inside
    `| None` and tuples)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    choices: dict[str, OneOf | tuple] = {}
    for field in dataclasses.fields(cls):
        found = _choices_in(hints[field.name])
        if found is not None:
            choices[field.name] = found
    return choices


def _choices_in(hint: Any) -> OneOf | tuple | None:
    if typing.get_origin(hint) is Annotated:
        found = next((m for m in hint.__metadata__ if isinstance(m, OneOf)), None)
        return found if found is not None else _choices_in(typing.get_args(hint)[0])
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    for arg in typing.get_args(hint):
        found = _choices_in(arg)
        if found is not None:
            return found
    return None


def _has_float(hint: Any) -> bool:
    return hint is float or any(_has_float(arg) for arg in typing.get_args(hint))


def check_choice(name: str, value: str, valid: Sequence[str]) -> str:
    """Return `value` if it is one of `valid`, else raise a one-line ValueError naming both."""
    if value not in valid:
        raise ValueError(f"invalid {name} {value!r}; valid: {', '.join(valid)}")
    return value


class Checked:
    """Base of option groups: building one checks every declared range and choice, then the group's own
    `check()`."""

    def __post_init__(self) -> None:
        for name, default in needs_values(type(self)).items():
            if getattr(self, name) == ():
                raise ValueError(f"invalid {name}: an empty list; valid: at least one value (default: "
                                 f"{' '.join(map(str, default))})")
        for name, valid in declared_ranges(type(self)).items():
            values = getattr(self, name)
            for value in values if isinstance(values, (tuple, list)) else (values,):
                if valid is not None:
                    valid.check(name, value)
                elif isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"invalid {name} {value!r}; valid: a finite number")
        for name, valid in declared_choices(type(self)).items():
            values = getattr(self, name)
            choices = tuple(valid.registry) if isinstance(valid, OneOf) else valid
            for value in values if isinstance(values, (tuple, list)) else (values,):
                if value is not None:
                    check_choice(name, value, choices)
        self.check()

    def check(self) -> None:
        """Rules between this group's fields (a one-line ValueError); none by default."""


def refuse_unused(options: Any, names: Sequence[str], applies: str) -> None:
    """A one-line ValueError for any of the fields `names` of `options` given a value other than its default,
    although the run ignores it (`applies`: when it would shape the run, e.g. "with --pruning"); config.json
    records only what shaped the run."""
    defaults = {f.name: _field_default(f) for f in dataclasses.fields(options)}
    for name in names:
        value = getattr(options, name)
        if value != defaults[name]:
            shown = tuple(value) if isinstance(value, list) else value
            raise ValueError(f"invalid {name} {shown!r}: it applies only {applies}; valid: leave it out "
                             f"(default {defaults[name]!r}), or {applies.removeprefix('with ')}")


def is_group(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def flat_options(options: Any) -> dict[str, Any]:
    """All option values of `options` with its groups' fields inlined: the config.json, W&B and checkpoint keys."""
    flat: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if is_group(value):
            flat.update(flat_options(value))
        else:
            flat[field.name] = value
    return flat


def from_flat(cls: type[T], **values: Any) -> T:
    """`cls` (an options dataclass holding groups) built from flat option names, e.g. from_flat(Args, env_id=...)."""
    remaining = dict(values)
    built = _build(cls, remaining, None)
    if remaining:
        raise ValueError(f"invalid option {next(iter(remaining))!r}; valid: the options of --help")
    return built


def replace_flat(options: T, **values: Any) -> T:
    """A copy of `options` with some flat option names changed (checked again)."""
    return from_flat(type(options), **{**flat_options(options), **values})


def _build(cls: type, remaining: dict[str, Any], default: Any) -> Any:
    kwargs = {}
    for field in dataclasses.fields(cls):
        current = getattr(default, field.name) if default is not None else _field_default(field)
        if is_group(current):
            kwargs[field.name] = _build(type(current), remaining, current)
        elif field.name in remaining:
            kwargs[field.name] = remaining.pop(field.name)
        elif default is not None:
            kwargs[field.name] = current
    return cls(**kwargs)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def Maybe(annotated: Any) -> Any:  # noqa: N802
    """`annotated | None` (None: the option's documented default) with its range and help hint kept on the union."""
    base, *metadata = typing.get_args(annotated)
    hints = [m for m in metadata if not isinstance(m, tyro.constructors.PrimitiveConstructorSpec)]
    return Annotated[Annotated[base, *metadata] | None, *hints]
