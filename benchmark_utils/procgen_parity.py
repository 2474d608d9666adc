"""Does Procgen 0.10.7 play like the 0.9.2 of OpenAI's published runs? Their first update, replayed without a network.

    python -m benchmark_utils.procgen_parity --num_seeds 8

The published runs' first update (64 envs x 256 steps, easy mode, levels [0, 200)) was played by an untrained
policy whose logits are near zero (an orthogonal head of gain 0.01), i.e. by a near-uniform policy. This command
plays that update with uniformly random actions for --num_seeds seeds per game (no network, so the learner plays no
part) and computes what the published update-1 `eprewmean` / `eplenmean` hold: the mean raw return and length of
the last 100 episodes finished in the update (all of them when fewer finished), in the order they finished.

Per game it prints our mean ± std over the seeds, the three published values and a verdict per statistic: "alike"
when |z| <= 3 for z = (published mean − our mean) / (our std · √(1/3 + 1/n)), the spread expected between a mean of
the 3 published runs and one of our n seeds if both came from the same game; otherwise "longer" / "shorter" (or
"higher" / "lower"). It cannot see differences a near-uniform policy does not reach (later levels of a game, rare
events), nor tell the published policy's slight non-uniformity from a difference of the game.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark_utils.validate import align_columns
from impoola.cli import run_command
from impoola.envs.games import GAMES, NUM_ACTIONS, Game, level_range
from impoola.envs.procgen import ProcgenVecEnv
from impoola.options import Checked, Int
from impoola.reference_curves import diagnostics

NUM_ENVS, NUM_STEPS, WINDOW = 64, 256, 100  # the published update and eprewmean's window
Z_LIMIT = 3.0
STATISTICS = (("eplenmean", "length", ("shorter", "longer")), ("eprewmean", "return", ("lower", "higher")))


@dataclass(frozen=True)
class Args(Checked):
    """A uniform-random first update on every game (or --games), compared with the published update 1."""

    num_seeds: Int(2, 1000) = 8
    """seeds per game (environment seed and action seed)"""
    games: tuple[Game, ...] = GAMES
    """Procgen games to play (default: all 16)"""
    procgen_threads: Int(0, 256) = 1
    """Procgen worker threads (0: step in the calling thread)"""


def first_update(game: str, seed: int, num_threads: int) -> tuple[float, float, int]:
    """(mean length, mean return, episodes finished) of the last WINDOW episodes of one random first update."""
    start_level, num_levels = level_range("generalization", "easy", "train")
    env = ProcgenVecEnv(game, NUM_ENVS, "easy", start_level, num_levels, seed=seed, num_threads=num_threads)
    rng = np.random.default_rng(seed)
    lengths: list[float] = []
    returns: list[float] = []
    try:
        env.reset()
        for _ in range(NUM_STEPS):
            _, _, terminated, truncated, info = env.step(rng.integers(0, NUM_ACTIONS, NUM_ENVS))
            done = terminated | truncated
            lengths.extend(info["episode_length"][done].tolist())
            returns.extend(info["episode_return"][done].tolist())
    finally:
        env.close()
    if not lengths:
        return math.nan, math.nan, 0
    return float(np.mean(lengths[-WINDOW:])), float(np.mean(returns[-WINDOW:])), len(lengths)


def verdict(published: np.ndarray, ours: np.ndarray, words: tuple[str, str]) -> tuple[str, float]:
    """'alike' or words[0] / words[1] (published below / above ours), and z."""
    spread = np.std(ours, ddof=1) * math.sqrt(1 / len(published) + 1 / len(ours))
    difference = float(np.mean(published) - np.mean(ours))
    if spread == 0:
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    else:
        z = difference / spread
    if abs(z) <= Z_LIMIT:
        return "alike", z
    return (words[0] if z < 0 else words[1]), z


def compare_game(game: str, num_seeds: int, num_threads: int) -> dict[str, Any]:
    """Our seeds' statistics, the published update-1 values and the verdicts of one game."""
    played = np.array([first_update(game, seed, num_threads) for seed in range(1, num_seeds + 1)])
    published = diagnostics(game)
    published = published[published["update"] == 1].sort_values("run")
    result: dict[str, Any] = {"game": game, "episodes": played[:, 2].tolist()}
    for index, (column, name, words) in enumerate(STATISTICS):
        ours, theirs = played[:, index], published[column].to_numpy(float)
        result[name] = {"ours": ours.tolist(), "published": theirs.tolist(),
                        "verdict": verdict(theirs, ours, ("published " + words[0], "published " + words[1]))}
    return result


def format_report(results: list[dict[str, Any]], num_seeds: int) -> str:
    """One row per game: published values, ours (mean ± std), verdicts; then which games play alike."""
    header = ["game", "published length (3 runs)", f"ours ({num_seeds} seeds)", "z", "published return",
              "ours", "z", "verdict"]
    rows = [header]
    alike = []
    for result in results:
        length, ret = result["length"], result["return"]
        verdicts = [length["verdict"][0], ret["verdict"][0]]
        same = all(v == "alike" for v in verdicts)
        if same:
            alike.append(result["game"])
        rows.append([
            result["game"], " / ".join(f"{v:.1f}" for v in length["published"]),
            f"{np.mean(length['ours']):.1f} ± {np.std(length['ours'], ddof=1):.1f}", f"{length['verdict'][1]:+.1f}",
            " / ".join(f"{v:.2f}" for v in ret["published"]),
            f"{np.mean(ret['ours']):.2f} ± {np.std(ret['ours'], ddof=1):.2f}", f"{ret['verdict'][1]:+.1f}",
            "alike" if same else "; ".join(f"{name}: {v}" for name, v in zip(("length", "return"), verdicts)
                                           if v != "alike"),
        ])
    lines = align_columns(rows, [True] * len(header)).splitlines()
    lines.append(f"alike (|z| <= {Z_LIMIT:g} on length and return): {len(alike)} of {len(results)} games"
                 + (f": {', '.join(alike)}" if alike else ""))
    return "\n".join(lines)


def main(args: Args) -> str:
    print(f"uniform-random first update ({NUM_ENVS} envs x {NUM_STEPS} steps, easy, levels [0, 200)) vs the "
          "published update 1 of openai/train-procgen", flush=True)
    results = []
    for game in args.games:
        results.append(compare_game(game, args.num_seeds, args.procgen_threads))
        print(f"  {game} done", file=sys.stderr, flush=True)
    text = format_report(results, args.num_seeds)
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(run_command(Args, main, description=__doc__))
