"""`python evaluate.py` on a saved checkpoint: conditions, result files, videos, noise clamping, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from evaluate import main
from impoola.envs.games import normalized_score
from impoola.envs.procgen import make_track_env
from impoola.envs.wrappers import add_pixel_noise
from support.paths import DATA


@pytest.mark.parametrize("policy,greedy", [("greedy", True), ("sample", False)])
def test_policy_option_chooses_how_the_agent_acts(tiny_checkpoint, tmp_path, policy, greedy):
    main([str(tiny_checkpoint), "--conditions", "train", "--num_episodes", "1", "--num_envs", "1", "--num_threads", "1",
          "--no-cuda", "--policy", policy, "--out", str(tmp_path)])
    assert json.loads((tmp_path / "results.json").read_text())["greedy"] is greedy


def test_dqn_sample_policy_records_its_temperature(tmp_path):
    """A DQN run (the previous version's) evaluated with --policy sample: softmax(Q / T) at the run's T (the actions
    themselves: tests/unit/impoola/models/test_agents.py)."""
    for policy, greedy, temperature in (("sample", False, 1.0), ("release", True, None)):
        main([str(DATA / "v1_runs" / "v1_dqn"), "--conditions", "train", "--num_episodes", "1", "--num_envs", "1",
              "--num_threads", "1", "--no-cuda", "--policy", policy, "--out", str(tmp_path / policy)])
        results = json.loads((tmp_path / policy / "results.json").read_text())
        assert (results["agent_kind"], results["greedy"], results["temperature"]) == ("dqn", greedy, temperature)


def test_cli_writes_results_and_videos(tiny_checkpoint, tmp_path):
    """The shared tiny PPO run (given as its run directory): two conditions, result files and videos."""
    out = tmp_path / "eval"
    main([str(tiny_checkpoint.parent.parent), "--conditions", "train,noise", "--noise-stds", "30", "--num_episodes",
          "2", "--num_envs", "2", "--num_threads", "1", "--capture_video", "--no-cuda", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["checkpoint"] == str(tiny_checkpoint)
    assert results["env_id"] == "bigfish" and results["seed"] == 1 and results["agent_kind"] == "ppo"
    assert results["greedy"] is False  # --policy release: PPO samples from its policy
    assert list(results["conditions"]) == ["train", "noise_30"]
    train, noise = results["conditions"]["train"], results["conditions"]["noise_30"]
    assert (train["start_level"], train["num_levels"], train["noise_std"]) == (0, 200, 0.0)
    assert (noise["start_level"], noise["num_levels"], noise["noise_std"]) == (0, 0, 30.0)
    for row in (train, noise):
        assert row["num_episodes"] == 2
        assert row["normalized_score"] == pytest.approx(normalized_score("bigfish", "easy", row["mean_return"]))
        assert os.path.getsize(row["video"]) > 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["condition"] for r in rows] == ["train", "noise_30"]
    assert float(rows[0]["mean_return"]) == pytest.approx(train["mean_return"])


def test_noise_condition_clamps_to_pixel_range():
    rng = np.random.default_rng(0)
    black, white = np.zeros((2, 3, 64, 64), np.uint8), np.full((2, 3, 64, 64), 255, np.uint8)
    noisy_black, noisy_white = add_pixel_noise(black, 30.0, rng), add_pixel_noise(white, 30.0, rng)
    # Clamped, not wrapped around: black stays dark, white stays bright, about half of each saturates.
    assert noisy_black.max() < 200 and 0.4 < (noisy_black == 0).mean() < 0.6
    assert noisy_white.min() > 55 and 0.4 < (noisy_white == 255).mean() < 0.6
    clean = make_track_env("bigfish", "easy", "efficiency", "test", 2, seed=1, num_threads=1)
    noisy = make_track_env("bigfish", "easy", "efficiency", "test", 2, seed=1, num_threads=1, noise_std=30.0)
    try:
        assert np.array_equal(clean.reset()[0], noisy.reset()[0])  # the reset frame is not noised
        actions = np.zeros(2, np.int64)
        frame, noised = clean.step(actions)[0], noisy.step(actions)[0]
        assert noised.dtype == np.uint8
        difference = np.abs(noised.astype(int) - frame)
        assert np.max(noised[frame == 0], initial=0) < 200  # no wrap-around below 0
        assert 10 < difference.mean() < 26  # E|N(0, 30²)| ≈ 24, less where clamped
    finally:
        clean.close()
        noisy.close()


def test_module_entry_point_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "evaluate.py", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: no checkpoint at") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("argv,message", [
    (["{missing}"], "no checkpoint at"),
    (["{corrupt}"], "corrupt checkpoint"),
    (["{run}", "--conditions", "train,holdout"], "invalid condition 'holdout'; valid: train, test, finetuning, noise"),
])
def test_bad_input_is_one_line_exit_2(tiny_checkpoint, tmp_path, capsys, argv, message):
    corrupt = tmp_path / "ckpt_000000000001.pt"
    corrupt.write_bytes(b"not a checkpoint")
    paths = {"missing": tmp_path / "nowhere", "corrupt": corrupt, "run": tiny_checkpoint}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
