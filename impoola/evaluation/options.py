"""The option group of evaluation during and at the end of training (`EvalOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from impoola.options import Checked, Float, Int, Maybe


@dataclass(frozen=True)
class EvalOptions(Checked):
    """Evaluation during and at the end of training."""

    eval_every_fraction: Float(0, 1, low_open=True) = 0.1
    """evaluate each time global_step passes the previous evaluation + this fraction of total_timesteps"""
    num_eval_episodes: Int(0) = 1000
    """episodes per track at each evaluation during training (0 disables evaluation during training)"""
    num_final_eval_episodes: Int(0) = 2500
    """episodes per track in the final evaluation (0 disables it)"""
    num_eval_envs: Maybe(Int(1, 4096)) = None
    """parallel environments of evaluation (default: num_envs); more envs than episodes is fine"""
    capture_video: bool = False
    """record one episode of the first evaluated track as an MP4 in <run>/videos/ at every evaluation (final too)"""
