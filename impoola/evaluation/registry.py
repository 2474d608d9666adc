"""The evaluation registry: which levels are evaluated, when, under which metric keys, with which policy.

Everything that decides an evaluation lives here; the training scripts, `python evaluate.py` and the
video recorder read it.

- `EvalSpec`: one evaluation environment, the levels of a (track, split) plus its observation wrapper (Gaussian
  pixel noise when `noise_std` > 0).
- `TRAINING_SPLITS[algo][phase]`: the splits of the run's own track a training run evaluates every 10% of
  training (`during`) and at the end (`final`). Splits whose levels coincide are evaluated once and logged under
  every one of their keys: on the efficiency track (both splits the full distribution) and the fine-tuning track
  (both the 100 fine-tuning levels) one evaluation logs `scores/*_train` and `scores/*_test`. This reproduces the
  release's protocol (facts §4: the test split only on generalization during training, PPO's final train split
  and DQN's final test split only on generalization), whose skipped evaluations are exactly these duplicates.
- `METRIC_KEYS`: the keys an evaluation logs per split (raw mean return, normalized score, episodes/s).
- `GREEDY[algo]`: how an algorithm acts when evaluated, as the release does: PPO samples from its policy, DQN
  takes the argmax of its Q-values.
- `EVAL_CONDITIONS`: the conditions of `python evaluate.py --conditions` (train, test, finetuning, noise); each
  expands to one or more `EvalSpec`s on the levels of a run's track.

Adding an evaluation condition is one `EVAL_CONDITIONS` entry (plus, for a new observation perturbation, a wrapper in
`impoola/envs/wrappers.py` applied in `EvalSpec.make_env`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from impoola.envs.games import SPLITS, TRACKS, level_range
from impoola.envs.procgen import ProcgenVecEnv, make_track_env
from impoola.envs.wrappers import PixelNoise
from impoola.options import check_choice

Policy = Callable[[np.ndarray], np.ndarray]
"""uint8 observation batch (N, 3, 64, 64) -> N actions"""

ALGORITHMS = ("ppo", "dqn")
PHASES = ("during", "final")

TRAINING_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "ppo": {"during": ("train", "test"), "final": ("train", "test")},
    "dqn": {"during": ("train", "test"), "final": ("train", "test")},
}
GREEDY: dict[str, bool] = {"ppo": False, "dqn": True}
METRIC_KEYS = (
    "scores/eval_avg_return_{split}", "scores/normalized_score_{split}", "charts/eval_episodes_per_second_{split}",
)


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation environment: a result name, the levels of `track`'s `split`, and the pixel noise."""

    name: str
    track: str
    split: str
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        check_choice("track", self.track, TRACKS)
        check_choice("split", self.split, SPLITS)
        if not self.noise_std >= 0:
            raise ValueError(f"invalid noise_std {self.noise_std!r}; valid: a number >= 0")

    def levels(self, distribution_mode: str) -> tuple[int, int]:
        """(start_level, num_levels) this evaluation plays; num_levels 0 = the full distribution."""
        return level_range(self.track, distribution_mode, self.split)

    def make_env(
        self,
        env_id: str,
        distribution_mode: str,
        *,
        num_envs: int,
        seed: int,
        num_threads: int | None = None,
        render_mode: str | None = None,
    ) -> ProcgenVecEnv | PixelNoise:
        """A fresh env on these levels (seeded with `seed`), observations through the wrapper."""
        return make_track_env(env_id, distribution_mode, self.track, self.split, num_envs, seed,
                              num_threads=num_threads, noise_std=self.noise_std, render_mode=render_mode)


@dataclass(frozen=True)
class TrainingEvaluation:
    """One evaluation of a training run and the splits under whose metric keys its result is logged."""

    spec: EvalSpec
    keys: tuple[str, ...]


def training_evaluations(algo: str, phase: str, track: str, distribution_mode: str) -> list[TrainingEvaluation]:
    """The evaluations a run of `algo` on `track` logs in `phase`, each level set once, under all its splits' keys."""
    check_choice("algorithm", algo, ALGORITHMS)
    check_choice("phase", phase, PHASES)
    evaluations: list[TrainingEvaluation] = []
    for split in TRAINING_SPLITS[algo][phase]:
        spec = EvalSpec(split, track, split)
        levels = spec.levels(distribution_mode)
        if any(done.spec.levels(distribution_mode) == levels for done in evaluations):
            continue
        keys = tuple(s for s in SPLITS if level_range(track, distribution_mode, s) == levels)
        evaluations.append(TrainingEvaluation(spec, keys))
    return evaluations


@dataclass(frozen=True)
class EvalCondition:
    """A condition of `python evaluate.py`: the split it plays, on whose track's levels, and whether it is noised.

    `level_track` None plays the run's own track; `noisy` conditions give one evaluation per noise std.
    """

    split: str
    level_track: str | None = None
    noisy: bool = False

    def specs(self, name: str, run_track: str, noise_stds: tuple[float, ...]) -> list[EvalSpec]:
        """The evaluations this condition stands for on a run of `run_track`."""
        track = run_track if self.level_track is None else self.level_track
        if not self.noisy:
            return [EvalSpec(name, track, self.split)]
        for std in noise_stds:
            if not std > 0:
                raise ValueError(f"invalid noise_stds value {std!r}; valid: positive numbers such as 5 15 30")
        return [EvalSpec(f"{name}_{std:g}", track, self.split, float(std)) for std in noise_stds]


EVAL_CONDITIONS: dict[str, EvalCondition] = {
    "train": EvalCondition("train"),
    "test": EvalCondition("test"),
    "finetuning": EvalCondition("train", level_track="finetuning"),
    "noise": EvalCondition("test", level_track="efficiency", noisy=True),
}


def condition_specs(conditions: list[str], run_track: str, noise_stds: tuple[float, ...]) -> list[EvalSpec]:
    """The evaluations the requested `EVAL_CONDITIONS` stand for, on the levels of the run's own track."""
    specs: list[EvalSpec] = []
    for name in conditions:
        check_choice("condition", name, tuple(EVAL_CONDITIONS))
        added = EVAL_CONDITIONS[name].specs(name, run_track, noise_stds)
        if not added:
            raise ValueError(f"invalid condition {name!r} with no noise_stds; valid: at least one noise std")
        specs += added
    return specs
