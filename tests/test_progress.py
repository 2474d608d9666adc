"""The live progress display: a headline with the time to the end, and a bar that moves with the rollout."""

from __future__ import annotations

import pytest

import dqn_training
import ppo_training
from conftest import tiny_dqn_args, tiny_ppo_args
from impoola.runlog import Progress, duration


def test_durations_read_like_a_clock():
    assert [duration(s) for s in (-1, 45, 725, 11_220)] == ["0s", "45s", "12m05s", "3h07m"]


def test_headline_gives_the_time_to_the_end_at_the_measured_speed(capsys):
    progress = Progress(total_steps=1000, start_step=0, enabled=True)
    progress.headline("cpu (a CPU), 2 torch + 2 Procgen threads | float32 channels-last | impoola_s2: 7 parameters")
    assert progress.head.desc.endswith("impoola_s2: 7 parameters | measuring speed")
    progress.start_time -= 10.0  # the first 100 steps took 10 s: the other 900 take 90 s
    progress.update(100, ret=1.5)
    progress.headline(progress.text)
    assert progress.head.desc.endswith("| 1m30s to the end")
    assert progress.bar.n == 100 and "ret=1.5" in progress.bar.postfix
    progress.close()
    err = capsys.readouterr().err
    assert "impoola_s2: 7 parameters" in err and "100/1000" in err


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_the_bar_advances_every_env_step_and_the_headline_names_the_run(tmp_path, monkeypatch, capsys, algo):
    steps, original = [], Progress.update

    def record(self, global_step, **postfix):
        steps.append(global_step)
        original(self, global_step, **postfix)

    monkeypatch.setattr(Progress, "update", record)
    if algo == "ppo":
        args = tiny_ppo_args(tmp_path, num_eval_episodes=0, num_final_eval_episodes=0, capture_video=False,
                             progress_bar=True)
        ppo_training.main(args)
    else:
        args = tiny_dqn_args(tmp_path, num_eval_episodes=0, num_final_eval_episodes=0, progress_bar=True)
        dqn_training.main(args)
    assert steps == list(range(args.num_envs, args.total_timesteps + 1, args.num_envs))  # not once per iteration
    err = capsys.readouterr().err
    parameters = {"ppo": "110,160", "dqn": "109,903"}[algo]  # 106,048 in the encoder, the rest in the heads
    assert f"{args.model_name}: {parameters} parameters" in err and "float32 channels-last" in err and "threads" in err
    assert f"{args.total_timesteps}/{args.total_timesteps}" in err
