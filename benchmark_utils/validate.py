"""Does this installation learn as published? PPO runs compared with OpenAI's train-procgen runs, update by update.

    python -m benchmark_utils.validate --env_id fruitbot --total_timesteps 196608
    python -m benchmark_utils.validate --compare_only \
        runs/validate/fruitbot__train_procgen__impala_s1_samepool_glorot__s1

It runs ppo_training.py with `--preset train-procgen` (what openai/train-procgen computed: easy, 200 levels,
Impala-CNN τ=1 with flatten, TF's max-pool padding and initialisation, γ 0.999, lr 5e-4 with TF's Adam ε, rewards
normalised with a 0.99 discount, 64 envs x 256 steps, ...; `--preset train-procgen-torch` for the same
hyperparameters on PyTorch's defaults), --num_seeds seeds in sequence (a run directory that exists is resumed; a
finished one is only compared), then compares each run with the three published runs (`impoola.reference_curves`):

- the diagnostics of each of the first --diagnostic_updates updates: value loss, clipfrac, policy entropy, approx-KL
  (baselines' estimator, 0.5·mean((log p_new − log p_old)²), which the training script logs as
  `losses/approx_kl_baselines`), explained variance and the mean length of the last 100 episodes, each against the
  published runs' min-max at the same update, with a verdict (inside the band, below, above) and a summary of
  which metrics match from which update; past 16 updates also per block of 16, which shows where a run parts from
  the published ones. At a fixed update these spread far less across the published runs than the returns do, so a
  few updates tell whether the loop behaves as published;

- ours is `charts/episodic_return_last100`, the mean raw return of the last 100 finished training episodes, which
  is how train-procgen's `eprewmean` is smoothed;
- at each step the published curves were logged at (every 4th update, 65,536 steps apart) that the run reached,
  the table shows ours and the published runs' min / mean / max, and the verdict: inside the band, below or above;
- a figure draws our curves over the published band;
- with --test_episodes N, the run's final evaluation (N episodes of the full level distribution) is compared with
  the published test curve at the run's last step.

--compare_only compares existing run directories (finished or stopped part way) without training. The run's own
config.json says which settings and speed options it used; every setting that differs from the published ones is
reported. Speed options (--precision bf16, --compile, ...) are passed to the training script.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_utils.launch import flag_values, model_tag
from impoola.cli import run_command, user_errors
from impoola.envs.games import Game, level_range
from impoola.models.encoders import ENCODERS, ModelOptions
from impoola.options import Checked, Choice, Int
from impoola.performance import PerformanceOptions
from impoola.presets import PRESETS, preset_values
from impoola.run.checkpoint import ADDED_OPTIONS
from impoola.reference_curves import LAST_DIAGNOSTIC_UPDATE, SETTINGS, STEPS_PER_UPDATE, curves, diagnostics
from impoola.run.options import SEED_RANGE
from impoola.run.runlog import WandbMode
from impoola.run.rundir import RunDir, check_output_dir, check_output_file
from impoola.run.rundir import run_name as script_run_name

ROOT = Path(__file__).resolve().parents[1]
SMOOTHED_RETURN = "charts/episodic_return_last100"
TEST_RETURN = "scores/eval_avg_return_test"
EXP_NAME = "train_procgen"
# The published settings as ppo_training.py flags (README, "Validation").
PRESET = "train-procgen"  # impoola/presets.py
PUBLISHED_FLAGS: tuple[str, ...] = ("--preset", PRESET)
# Flags this command sets on every run; --train_flags must not.
OWN_FLAGS = ("env_id", "preset", "seed", "run_name", "output_dir", "resume", "total_timesteps", "exp_name",
             "num_eval_episodes", "num_final_eval_episodes",
             *(option.name for option in dataclasses.fields(PerformanceOptions)))
CHECKPOINT_EVERY = 8  # iterations: a stopped validation resumes from at most 8 x 16,384 steps back
VERDICTS = ("inside the band", "below", "above")
# The per-update diagnostics: (published column, our metric key, label).
DIAGNOSTICS = (
    ("value_loss", "losses/value_loss", "value loss"),
    ("clipfrac", "losses/clipfrac", "clipfrac"),
    ("policy_entropy", "losses/entropy", "entropy"),
    ("approxkl", "losses/approx_kl_baselines", "approx-KL"),
    ("explained_variance", "losses/explained_variance", "explained variance"),
    ("eplenmean", "charts/episodic_length_last100", "episode length"),
)
# A run made like the three published ones (exchangeable with them) falls inside their min-max at an update with
# probability 1/2, below it or above it with 1/4 each. A metric differs when our runs fall on one side more often
# than that allows: a one-sided binomial tail below SIDE_P_VALUE (updates are correlated, so this is a guide, not an
# exact test).
SIDE_PROBABILITY = 1 / 4
SIDE_P_VALUE = 0.01
# Beyond one block, the summary also gives each metric's verdict per block of this many updates (262,144 steps, the
# spacing of 4 published return points), which shows from where on the runs part from the published ones.
DIAGNOSTIC_BLOCK = 16


@dataclass(frozen=True)
class Args(Checked):
    """PPO with OpenAI's train-procgen settings, its training return compared with their published runs."""

    env_id: Game = "fruitbot"
    """Procgen game (one of the 16)"""
    preset: Choice(PRESETS) = PRESET
    """train-procgen: what OpenAI's train-procgen computed; train-procgen-torch: its hyperparameters on PyTorch's
    defaults (the preset before it was corrected)"""
    total_timesteps: Int(1) = 2_000_000
    """environment steps per run (2e6 accepted; run in whole iterations of 64 x 256 steps)"""
    diagnostic_updates: Int(0, LAST_DIAGNOSTIC_UPDATE) = 12
    """compare the per-update diagnostics of the first this many updates (0: none; published to update 244)"""
    num_seeds: Int(1, 1000) = 1
    """runs, in sequence, with seeds --seed, --seed + 1, ..."""
    seed: SEED_RANGE = 1
    """seed of the first run"""
    output_dir: str = "runs/validate"
    """parent of the run directories ({env_id}__train_procgen__{model}__s{seed}) and of the figure"""
    test_episodes: Int(0, 10**7) = 0
    """final evaluation episodes on the full level distribution, compared with the published test curve (0: none)"""
    train_flags: str = ""
    """more ppo_training.py flags in one string (--train_flags="--procgen_threads 2"), applied after the published
    settings: a flag that changes one of them is reported as a deviation"""
    compare_only: tuple[str, ...] = ()
    """compare these existing run directories (finished or not) without training"""
    figure: str | None = None
    """figure path (default: OUTPUT_DIR/validation_{env_id}.png)"""
    wandb_mode: WandbMode = "disabled"
    """W&B mode of the runs: disabled, offline or online"""
    progress_bar: bool = True
    """show the training script's progress bar"""
    speed: PerformanceOptions = field(default_factory=PerformanceOptions)

    def check(self) -> None:
        """Raise a one-line ValueError naming the first invalid option."""
        check_output_dir("output_dir", self.output_dir)
        if self.figure is not None:
            check_output_file("figure", self.figure)
        if self.seed + self.num_seeds > 2**32:
            raise ValueError(f"invalid num_seeds {self.num_seeds} from seed {self.seed}; valid: seeds below 2^32")
        try:
            extra = shlex.split(self.train_flags)
        except ValueError as exc:
            raise ValueError(f"invalid train_flags {self.train_flags!r}: {exc}") from None
        own = sorted(set(flag_values(extra)) & set(OWN_FLAGS))
        if own:
            raise ValueError(f"invalid train_flags {self.train_flags!r}: --{own[0]} is set by this command; "
                             "valid: other ppo_training.py flags")
        for run_dir in self.compare_only:
            if not RunDir.at(run_dir).metrics.is_file():
                raise ValueError(f"invalid compare_only {run_dir!r}; valid: a run directory with a metrics.jsonl")


def run_name(args: Args, seed: int) -> str:
    """The training script's own default name of one run: the preset's model, or the one --train_flags picks."""
    model_fields = {option.name for option in dataclasses.fields(ModelOptions)}
    published_model = [f"--{key}={value}" for key, value in preset_values(args.preset, "ppo").items()
                       if key in model_fields]
    return script_run_name(args.env_id, EXP_NAME, model_tag([*published_model, *shlex.split(args.train_flags)]), seed)


def speed_flags(options: PerformanceOptions) -> list[str]:
    """The speed options as ppo_training.py flags."""
    flags = []
    for option in dataclasses.fields(PerformanceOptions):
        value = getattr(options, option.name)
        if isinstance(value, bool):
            flags.append(f"--{option.name}" if value else f"--no-{option.name}")
        elif value is not None:
            flags += [f"--{option.name}", str(value)]
    return flags


def training_command(args: Args, seed: int) -> list[str]:
    """The ppo_training.py command of one run (with --resume when its directory exists)."""
    output_dir = Path(args.output_dir).resolve()
    command = [sys.executable, str(ROOT / "ppo_training.py"), "--preset", args.preset, "--checkpoint_every",
               str(CHECKPOINT_EVERY), *shlex.split(args.train_flags),
               "--env_id", args.env_id, "--seed", str(seed), "--exp_name", EXP_NAME,
               "--run_name", run_name(args, seed), "--output_dir", str(output_dir),
               "--total_timesteps", str(int(args.total_timesteps)), "--num_eval_episodes", "0",
               "--num_final_eval_episodes", str(args.test_episodes), "--wandb_mode", args.wandb_mode,
               "--progress_bar" if args.progress_bar else "--no-progress_bar", *speed_flags(args.speed)]
    return [*command, "--resume"] if (output_dir / run_name(args, seed)).exists() else command


# Comparison -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCurve:
    """One run's smoothed training return, its final test return (if evaluated) and what it ran with."""

    name: str
    steps: np.ndarray
    returns: np.ndarray
    config: dict[str, Any]
    test_return: float | None = None
    done: bool = False
    elapsed_s: float = math.nan
    diagnostics: dict[str, dict[int, float]] = field(default_factory=dict)
    """our metric key -> {update: value}, for runs whose updates are the published 16,384 steps"""


def read_run(run_dir: str | Path) -> RunCurve:
    """The smoothed return curve of a run directory, finished or stopped part way."""
    run_dir = RunDir.at(run_dir)
    config = run_dir.read_config()
    lines = run_dir.metrics.read_text().split("\n")[:-1]  # a half-written last line is dropped
    rows = [json.loads(line) for line in lines if line.strip()]
    curve = [(row["global_step"], row[SMOOTHED_RETURN]) for row in rows if row.get(SMOOTHED_RETURN) is not None]
    if not curve:
        raise ValueError(f"invalid run directory {str(run_dir.path)!r}: no {SMOOTHED_RETURN} logged yet "
                         "(no episode finished, or a run of a version without it)")
    steps, returns = (np.array(column, dtype=float) for column in zip(*curve))
    tests = [row[TEST_RETURN] for row in rows if row.get(TEST_RETURN) is not None]
    elapsed = [row["charts/elapsed_train_time"] for row in rows if "charts/elapsed_train_time" in row]
    per_update = {}
    if config.get("batch_size") == STEPS_PER_UPDATE:
        per_update = {key: {row["global_step"] // STEPS_PER_UPDATE: row[key] for row in rows
                            if row.get(key) is not None and row["global_step"] > 0} for _, key, _ in DIAGNOSTICS}
    return RunCurve(run_dir.name, steps, returns, config, tests[-1] if tests else None, run_dir.is_done(),
                    elapsed[-1] if elapsed else math.nan, per_update)


@dataclass(frozen=True)
class Band:
    """The published runs at given steps: each run linearly interpolated, then min / mean / max over runs."""

    steps: np.ndarray
    low: np.ndarray
    mean: np.ndarray
    high: np.ndarray

    @classmethod
    def at(cls, reference: Mapping[Any, tuple[np.ndarray, np.ndarray]], steps: np.ndarray) -> Band:
        """`reference` maps each published run to its (steps, values)."""
        values = np.stack([np.interp(steps, run_steps, run_values) for run_steps, run_values in reference.values()])
        return cls(np.asarray(steps, dtype=float), values.min(0), values.mean(0), values.max(0))


def verdict(value: float, low: float, high: float) -> str:
    """'inside the band' (low <= value <= high), 'below' or 'above'."""
    return "below" if value < low else "above" if value > high else "inside the band"


@dataclass(frozen=True)
class Comparison:
    band: Band
    ours: dict[str, np.ndarray]
    """run name -> our smoothed return at band.steps"""

    @property
    def verdicts(self) -> dict[str, list[str]]:
        return {name: [verdict(v, lo, hi) for v, lo, hi in zip(values, self.band.low, self.band.high)]
                for name, values in self.ours.items()}


def compare(runs: Sequence[RunCurve], reference: Mapping[Any, tuple[np.ndarray, np.ndarray]]) -> Comparison:
    """Our runs and the published band at the published steps that all our runs reached (our own logged steps
    when they end before the first published one)."""
    first, last = max(run.steps[0] for run in runs), min(run.steps[-1] for run in runs)
    published = np.unique(np.concatenate([steps for steps, _ in reference.values()]))
    steps = published[(published >= first) & (published <= last)]
    if not steps.size:
        steps = np.unique(np.concatenate([run.steps[(run.steps >= first) & (run.steps <= last)] for run in runs]))
    steps = steps if steps.size else np.array([last])
    return Comparison(Band.at(reference, steps), {run.name: np.interp(steps, run.steps, run.returns) for run in runs})


def published_runs(game: str, split: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The published runs of a game and split: run -> (total_timesteps, eprewmean)."""
    wide = curves(game, split)
    return {run: (wide[run].dropna().index.to_numpy(float), wide[run].dropna().to_numpy(float))
            for run in wide.columns}


def run_setting(config: Mapping[str, Any], key: str) -> Any:
    """A published setting's value in a run's config.json (None where the script fixes it)."""
    if key == "learning_rate":
        return config.get("base_learning_rate")
    if key == "pooling":
        family = ENCODERS.get(config.get("encoder"))
        return config.get("pooling") or (family.default_pooling if family is not None else None)
    if key in ("start_level", "num_levels"):
        start, num = level_range(config["track"], config["distribution_mode"], "train")
        return start if key == "start_level" else num
    if key == "reward_normalization":
        return SETTINGS[key] if config.get("normalize_reward") else "none"
    if key == "reward_norm_gamma":  # unset: γ
        return config.get(key) if config.get(key) is not None else config.get("gamma")
    return config.get(key, ADDED_OPTIONS.get(key))  # a run older than an option ran with its ADDED_OPTIONS value


def deviations(config: Mapping[str, Any]) -> list[str]:
    """'name=ours (published X)' for each published setting the run did not use."""
    found = []
    for key, published in SETTINGS.items():
        ours = run_setting(config, key)
        if ours is not None and ours != published:
            found.append(f"{key}={ours} (published {published})")
    return found


def speed_summary(config: Mapping[str, Any]) -> str:
    """The speed options a run used, from its config.json."""
    parts = [f"{option.name} {config.get(option.name)}" for option in dataclasses.fields(PerformanceOptions)]
    return f"device {config.get('device', '?')}: " + ", ".join(parts)


def format_steps(steps: float) -> str:
    return f"{int(steps):,}"


def align_columns(rows: Sequence[Sequence[str]], left: Sequence[bool]) -> str:
    """Rows of cells as text columns two spaces apart, each as wide as its widest cell: left-aligned where `left`
    says so, right-aligned (numbers) elsewhere."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(left))]
    return "\n".join("  ".join(cell.ljust(w) if is_left else cell.rjust(w)
                               for cell, w, is_left in zip(row, widths, left)).rstrip() for row in rows)


def format_table(comparison: Comparison) -> str:
    """step | ref min | ref mean | ref max | ours | verdict (one ours/verdict pair per run)."""
    band, verdicts = comparison.band, comparison.verdicts
    header = ["step", "ref min", "ref mean", "ref max"]
    for name in comparison.ours:
        header += [f"ours ({name})", "verdict"] if len(comparison.ours) > 1 else ["ours", "verdict"]
    rows = [header]
    for i, step in enumerate(band.steps):
        row = [format_steps(step), f"{band.low[i]:.2f}", f"{band.mean[i]:.2f}", f"{band.high[i]:.2f}"]
        for name, values in comparison.ours.items():
            row += [f"{values[i]:.2f}", verdicts[name][i]]
        rows.append(row)
    return align_columns(rows, [c >= 5 and c % 2 == 1 for c in range(len(header))])


def summary_lines(comparison: Comparison) -> list[str]:
    """Per run: how many of the compared steps were inside the band, below and above."""
    lines = []
    for name, found in comparison.verdicts.items():
        counts = ", ".join(f"{found.count(v)} {v}" for v in VERDICTS[1:])
        lines.append(f"{name}: {found.count(VERDICTS[0])} of {len(found)} steps inside the band ({counts})")
    return lines


def test_line(run: RunCurve, game: str) -> str | None:
    """The final test-level return against the published test curve at the run's last step."""
    if run.test_return is None:
        return None
    band = Band.at(published_runs(game, "test"), np.array([run.steps[-1]]))
    return (f"{run.name}: final test return {run.test_return:.2f} ({run.config.get('num_final_eval_episodes')} "
            f"episodes, full distribution); published test eprewmean at {format_steps(run.steps[-1])} steps: "
            f"{band.low[0]:.2f} / {band.mean[0]:.2f} / {band.high[0]:.2f} (min / mean / max) -> "
            f"{verdict(run.test_return, band.low[0], band.high[0])}")


# Diagnostics ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricComparison:
    """One diagnostic at updates 1..n: the published runs' min / max and each run's value (nan: not logged)."""

    label: str
    key: str
    updates: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ours: dict[str, np.ndarray]

    @property
    def verdicts(self) -> dict[str, list[str | None]]:
        """Per run and update: a verdict, or None where the run logged no value."""
        return {name: [None if math.isnan(v) else verdict(v, lo, hi) for v, lo, hi in zip(values, self.low, self.high)]
                for name, values in self.ours.items()}

    def logged(self) -> list[list[str]]:
        """The verdicts of each run that logged this metric."""
        found = [[v for v in run if v is not None] for run in self.verdicts.values()]
        return [run for run in found if run]

    def side_counts(self) -> tuple[int, int, int]:
        """(below, above, all) over the logged run-updates."""
        found = [v for run in self.logged() for v in run]
        return found.count(VERDICTS[1]), found.count(VERDICTS[2]), len(found)

    def matches(self) -> bool:
        """Logged, and neither below nor above the band more often than a run like the published ones would be
        (`SIDE_PROBABILITY`, at `SIDE_P_VALUE`)."""
        below, above, total = self.side_counts()
        return total > 0 and min(side_tail(below, total), side_tail(above, total)) >= SIDE_P_VALUE

    def leaning(self) -> str:
        """The side the runs leave the band on more often (by its binomial tail), e.g. `below at 19 of 40
        run-updates`."""
        below, above, total = self.side_counts()
        side, count = ("below", below) if side_tail(below, total) <= side_tail(above, total) else ("above", above)
        return f"{side} at {count} of {total} run-updates"

    def window(self, first: int, last: int) -> MetricComparison:
        """The same comparison at updates first..last only."""
        keep = (self.updates >= first) & (self.updates <= last)
        return MetricComparison(self.label, self.key, self.updates[keep], self.low[keep], self.high[keep],
                                {name: values[keep] for name, values in self.ours.items()})


def side_tail(count: int, total: int) -> float:
    """P(X >= count) for X ~ Binomial(total, SIDE_PROBABILITY)."""
    p = SIDE_PROBABILITY
    return sum(math.comb(total, k) * p ** k * (1 - p) ** (total - k) for k in range(count, total + 1))


def compare_diagnostics(runs: Sequence[RunCurve], published: Any, num_updates: int) -> list[MetricComparison]:
    """Each diagnostic at the updates 1..num_updates that every run reached; [] when none is comparable."""
    reached = [max((max(values, default=0) for values in run.diagnostics.values()), default=0) for run in runs]
    last = min([num_updates, *reached])
    if last < 1:
        return []
    updates = np.arange(1, last + 1)
    comparisons = []
    for column, key, label in DIAGNOSTICS:
        wide = published.pivot(index="update", columns="run", values=column).reindex(updates)
        ours = {run.name: np.array([run.diagnostics[key].get(int(u), math.nan) for u in updates], dtype=float)
                for run in runs}
        comparisons.append(MetricComparison(label, key, updates, wide.min(axis=1).to_numpy(),
                                            wide.max(axis=1).to_numpy(), ours))
    return comparisons


def format_number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def format_diagnostics(comparison: MetricComparison) -> str:
    """update | ref min | ref max | ours | verdict (one ours/verdict pair per run, run k as [k] of the legend that
    `diagnostics_report` prints)."""
    single = len(comparison.ours) == 1
    header = ["update", "ref min", "ref max"]
    for index, _ in enumerate(comparison.ours, start=1):
        header += ["ours", "verdict"] if single else [f"ours [{index}]", "verdict"]
    rows = [header]
    verdicts = comparison.verdicts
    for i, update in enumerate(comparison.updates):
        row = [str(update), format_number(comparison.low[i]), format_number(comparison.high[i])]
        for name, values in comparison.ours.items():
            row += [format_number(values[i]), verdicts[name][i] or "not logged"]
        rows.append(row)
    table = align_columns(rows, [c >= 4 and c % 2 == 0 for c in range(len(header))])
    return f"{comparison.label} (ours: {comparison.key})\n{table}"


def describe_metric(comparison: MetricComparison) -> list[str]:
    """Per run: how many updates were inside / below / above, which ones were not, and from which update on the
    run stays inside."""
    lines = []
    for name, found in comparison.verdicts.items():
        logged = [(int(u), v) for u, v in zip(comparison.updates, found) if v is not None]
        if not logged:
            lines.append(f"{comparison.label}, {name}: not logged (a run of a version without {comparison.key})")
            continue
        outside = {side: [u for u, v in logged if v == side] for side in VERDICTS[1:]}
        inside = sum(v == VERDICTS[0] for _, v in logged)
        parts = [f"{side} at update{'s' if len(at) > 1 else ''} {', '.join(map(str, at))}"
                 for side, at in outside.items() if at]
        stays = next((u for i, (u, _) in enumerate(logged) if all(v == VERDICTS[0] for _, v in logged[i:])), None)
        since = f"; inside from update {stays} on" if stays is not None else "; outside at the last update"
        lines.append(f"{comparison.label}, {name}: inside the band at {inside} of {len(logged)} updates"
                     + (f" ({'; '.join(parts)})" if parts else "") + since)
    return lines


def diagnostics_summary(comparisons: Sequence[MetricComparison]) -> str:
    """One line: on which metrics the early dynamics match (`MetricComparison.matches`) and on which not, with the
    side they leave the band on."""
    updates = comparisons[0].updates
    matching = [c.label for c in comparisons if c.matches()]
    missing = [c.label for c in comparisons if not c.logged()]
    differing = [f"{c.label} ({c.leaning()})" for c in comparisons if c.logged() and not c.matches()]
    dynamics = "the early dynamics" if updates[-1] <= DIAGNOSTIC_BLOCK else "the dynamics"
    return (f"summary, updates 1-{updates[-1]}: {dynamics} match on "
            f"{', '.join(matching) if matching else 'no metric'}"
            + (f"; they differ on {', '.join(differing)}" if differing else "")
            + (f"; not logged: {', '.join(missing)}" if missing else "")
            + f" (match: below and above the published min-max no more often than a run like the published ones, "
              f"1/4 of the run-updates each, allows at p >= {SIDE_P_VALUE:g})")


def diagnostics_report(runs: Sequence[RunCurve], game: str, num_updates: int) -> list[str]:
    """The printed per-update diagnostics: one table per metric, the per-run counts and the summary line."""
    if num_updates == 0:
        return []
    unlike = [run.name for run in runs if not run.diagnostics]
    if unlike:
        return [f"diagnostics: not compared: {', '.join(unlike)} do not run the published update of "
                f"{STEPS_PER_UPDATE:,} steps (64 envs x 256 steps)"]
    comparisons = compare_diagnostics(runs, diagnostics(game), num_updates)
    if not comparisons:
        return ["diagnostics: not compared: no update finished yet"]
    lines = [f"{game}: per-update diagnostics vs the published runs (min-max of 3 at the same update)"]
    if len(runs) > 1:
        lines += [f"[{index}] {run.name}" for index, run in enumerate(runs, start=1)]
    for comparison in comparisons:
        lines += ["", format_diagnostics(comparison)]
    lines.append("")
    for comparison in comparisons:
        lines += describe_metric(comparison)
    return [*lines, *block_summary(comparisons), diagnostics_summary(comparisons)]


def block_summary(comparisons: Sequence[MetricComparison], block: int = DIAGNOSTIC_BLOCK) -> list[str]:
    """Past one block of updates, a line per metric with its verdict in each block (the rule of
    `MetricComparison.matches`), e.g. `explained variance by 16 updates: 1-16 below at 19 of 32 run-updates, 17-32
    match`; [] for one block or less."""
    last = int(comparisons[0].updates[-1]) if comparisons else 0
    if last <= block:
        return []
    lines = []
    for comparison in comparisons:
        if not comparison.logged():
            continue
        parts = []
        for first in range(1, last + 1, block):
            end = min(first + block - 1, last)
            part = comparison.window(first, end)
            span = f"{first}-{end}"
            parts.append(f"{span} match" if part.matches() else f"{span} {part.leaning()}")
        lines.append(f"{comparison.label} by {block} updates: {', '.join(parts)}")
    return lines


def plot(runs: Sequence[RunCurve], reference: Mapping[Any, tuple[np.ndarray, np.ndarray]], game: str,
         path: Path) -> None:
    """Our smoothed curves over the published band (min-max of the runs, their mean dashed), up to our last step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    last = max(run.steps[-1] for run in runs)
    reference_steps = np.unique(np.concatenate([steps for steps, _ in reference.values()]))
    shown = reference_steps[reference_steps <= last + 4 * STEPS_PER_UPDATE]
    shown = shown if shown.size >= 2 else reference_steps[:2]
    band = Band.at(reference, shown)
    figure = Figure(figsize=(6.4, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.fill_between(band.steps, band.low, band.high, color="0.8", label="published runs (min-max of 3)")
    ax.plot(band.steps, band.mean, "k--", lw=1, label="published mean")
    for run in runs:
        ax.plot(run.steps, run.returns, lw=1.5, label=f"ours: {run.name}")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k"))
    ax.set_xlim(left=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return, last 100 episodes")
    precision = {run.config.get("precision") for run in runs}
    ax.set_title(f"{game}: PPO, train-procgen settings (easy, 200 levels), {'/'.join(sorted(map(str, precision)))}",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def report(runs: Sequence[RunCurve], game: str, figure: Path, diagnostic_updates: int = 12) -> str:
    """The printed comparison: settings and speed options used, the return table, the verdict counts, the test
    line, then the per-update diagnostics."""
    reference = published_runs(game, "train")
    comparison = compare(runs, reference)
    lines = [f"{game}: training return (mean of the last 100 episodes) vs openai/train-procgen easy-200 runs 0-2"]
    for run in runs:
        total = run.config.get("num_iterations", 0) * run.config.get("batch_size", 0)
        state = "finished" if run.done else "stopped part way"
        lines.append(f"{run.name}: {format_steps(run.steps[-1])} of {format_steps(total)} steps ({state}), "
                     f"{run.elapsed_s / 60:.1f} min of training; {speed_summary(run.config)}")
        differ = deviations(run.config)
        lines.append(f"{run.name}: settings " + ("differ from the published ones: " + "; ".join(differ) if differ
                                                  else "are the published ones"))
    lines += ["", format_table(comparison), "", *summary_lines(comparison)]
    lines += [line for line in (test_line(run, game) for run in runs) if line is not None]
    plot(runs, reference, game, figure)
    lines.append(f"figure: {figure}")
    diagnostic_lines = diagnostics_report(runs, game, diagnostic_updates)
    return "\n".join([*lines, *([""] if diagnostic_lines else []), *diagnostic_lines])


def main(args: Args) -> str:
    if args.compare_only:
        with user_errors():
            runs = [read_run(run_dir) for run_dir in args.compare_only]
            games = sorted({run.config["env_id"] for run in runs})
            if len(games) > 1:
                raise ValueError(f"invalid compare_only: runs of several games ({', '.join(games)}); valid: one game")
        game = games[0]
    else:
        game = args.env_id
        for seed in range(args.seed, args.seed + args.num_seeds):
            command = training_command(args, seed)
            print(f"run {seed - args.seed + 1}/{args.num_seeds}: {shlex.join(command)}", flush=True)
            code = subprocess.call(command, cwd=ROOT)
            if code != 0:
                ended = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                print(f"error: the training run of seed {seed} {ended}; re-run this command to resume it",
                      file=sys.stderr)
                raise SystemExit(code if code > 0 else 1)
        with user_errors():
            runs = [read_run(Path(args.output_dir) / run_name(args, seed))
                    for seed in range(args.seed, args.seed + args.num_seeds)]
    figure = Path(args.figure) if args.figure else Path(args.output_dir) / f"validation_{game}.png"
    text = report(runs, game, figure, args.diagnostic_updates)
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(run_command(Args, main, description=__doc__))
