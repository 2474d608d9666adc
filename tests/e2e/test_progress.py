"""The live progress display of both training scripts: a headline naming the run and a bar that moves with every env
step."""

from __future__ import annotations

import pytest

import dqn_training
import ppo_training
from impoola.run.runlog import Progress
from support.runs import tiny_dqn_args, tiny_ppo_args


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
