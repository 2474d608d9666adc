"""The start-up checks: each answers with one ValueError line naming what is invalid, and passes what is valid."""

from __future__ import annotations

import pytest
import torch

from impoola.run.runlog import LoggingOptions
from impoola.models.encoders import ModelOptions
from impoola.run.startup import check_buildable, check_memory_need, check_resume, check_wandb


def test_the_model_is_built_on_the_meta_device_and_a_build_failure_is_one_line(monkeypatch):
    check_buildable("ppo", ModelOptions(), 15)
    check_buildable("dqn", ModelOptions(encoder="impala", scale=1), 15)
    devices = []

    def failing_build(kind, options, num_actions):
        devices.append(torch.empty(1).device.type)
        raise RuntimeError("Given groups=1, weight of size [16, 3, 3, 3],\n expected input ...")

    monkeypatch.setattr("impoola.models.agents.build_agent", failing_build)
    with pytest.raises(ValueError) as error:
        check_buildable("ppo", ModelOptions(), 15)
    assert devices == ["meta"]
    assert str(error.value) == ("invalid model options (impoola_s2): the network cannot be built: "
                                "Given groups=1, weight of size [16, 3, 3, 3], expected input ...")


def test_memory_need_is_compared_with_what_is_available():
    check_memory_need("buffer_size", required=2**30, available=2**30, advice="a smaller buffer")
    with pytest.raises(ValueError, match=r"invalid buffer_size: it needs 2\.0 GiB of memory, 1\.0 GiB are available; "
                                         r"valid: a smaller buffer"):
        check_memory_need("buffer_size", required=2 * 2**30, available=2**30, advice="a smaller buffer")


def test_online_wandb_needs_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    check_wandb(LoggingOptions(wandb_mode="offline"))
    with pytest.raises(ValueError, match="invalid wandb_mode 'online': no W&B credentials"):
        check_wandb(LoggingOptions(wandb_mode="online"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    check_wandb(LoggingOptions(wandb_mode="online"))


def test_a_resume_needs_steps_left_unless_it_is_the_same_runs_final_checkpoint():
    checkpoint = {"global_step": 1024, "args": {"total_timesteps": 1024}}
    check_resume(checkpoint, total_steps=2048, total_timesteps=2048)  # steps left
    check_resume(checkpoint, total_steps=1024, total_timesteps=1024)  # the same run, finished: redoes its final eval
    with pytest.raises(ValueError, match="the checkpoint is at step 1024, this run would end at step 512"):
        check_resume(checkpoint, total_steps=512, total_timesteps=512)
    with pytest.raises(ValueError, match="valid: more than 1024 steps"):
        check_resume(checkpoint, total_steps=1024, total_timesteps=1000)  # another run's total, ending at the same step
