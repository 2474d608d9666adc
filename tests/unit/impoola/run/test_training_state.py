"""TrainingState: its state_dict is the checkpoint payload and load_state_dict continues from it; EpisodeStats."""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from impoola.envs.options import EnvOptions
from impoola.envs.games import normalized_score
from impoola.envs.procgen import ProcgenVecEnv
from impoola.run.training_state import EpisodeStats, TrainingState
from support.runs import tiny_ppo_args


@dataclass(eq=False, kw_only=True)
class LinearState(TrainingState):
    agent_kind = "ppo"


def fresh_state(tmp_path, seed: int) -> LinearState:
    torch.manual_seed(seed)
    agent = torch.nn.Linear(3, 2)
    envs = ProcgenVecEnv("bigfish", 2, "easy", 0, 200, seed=seed, num_threads=0)
    return LinearState(args=tiny_ppo_args(tmp_path), device=torch.device("cpu"), agent=agent,
                       optimizer=torch.optim.Adam(agent.parameters(), lr=1e-3), learning_rate=5e-3, envs=envs,
                       obs=envs.reset()[0], next_eval_step=100.0)


def test_a_state_continues_from_its_own_state_dict(tmp_path):
    """The payload names the shared checkpoint keys; loading it restores weights, moments, envs, counters and
    RNGs, and applies the current learning rate rather than the checkpoint's."""
    first = fresh_state(tmp_path, 1)
    first.agent(torch.ones(1, 3)).sum().backward()
    first.optimizer.step()
    first.obs = first.envs.step(np.array([1, 2]))[0]
    first.global_step, first.elapsed, first.metrics_rows = 32, 4.5, 3
    payload = first.state_dict()
    assert set(payload) == {"agent", "optimizer", "args", "agent_kind", "num_actions", "global_step",
                            "next_eval_step", "elapsed", "env_state", "next_obs", "rng", "metrics_rows"}
    expected_next = first.envs.step(np.array([0, 0]))[0]
    expected_draw = torch.rand(3)

    second = fresh_state(tmp_path, 2)
    second.load_state_dict(payload)
    assert torch.equal(second.agent.weight, first.agent.weight)
    assert second.optimizer.state_dict()["state"][0]["exp_avg"].abs().sum() > 0
    assert second.optimizer.param_groups[0]["lr"] == 5e-3
    assert (second.global_step, second.elapsed, second.metrics_rows) == (32, 4.5, 3)
    assert np.array_equal(second.obs, payload["next_obs"])
    assert np.array_equal(second.envs.step(np.array([0, 0]))[0], expected_next)  # the same game state
    assert torch.equal(torch.rand(3), expected_draw)  # the same RNG stream
    first.envs.close()
    second.envs.close()


def pickled_classes(payload: dict) -> set[str]:
    """The modules of the classes and functions a torch.save of `payload` names in its pickle."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with zipfile.ZipFile(buffer) as archive:
        data = archive.read(next(name for name in archive.namelist() if name.endswith("data.pkl")))
    strings, modules = [], set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            modules.add(arg.split(" ")[0])
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
        elif isinstance(arg, str):
            strings.append(arg)
    return modules


def test_a_checkpoint_holds_only_plain_data_so_moved_modules_never_break_a_resume(tmp_path):
    """The payload pickles tensors, arrays and builtins only: no class of this package, whose module may move."""
    state = fresh_state(tmp_path, 1)
    modules = pickled_classes(state.state_dict())
    state.envs.close()
    assert "torch._utils" in modules and "numpy" in modules
    assert {module.split(".")[0] for module in modules} <= {"torch", "numpy", "collections", "_codecs", "builtins"}


def test_episode_stats_report_the_episodes_that_ended():
    stats = EpisodeStats(EnvOptions(env_id="coinrun"))
    info = {"episode_return": np.array([10.0, 0.0, 5.0]), "episode_length": np.array([40, 0, 60])}
    assert stats.add(info, np.array([False, False, False])) == {} and stats.metrics() == {}
    assert stats.add(info, np.array([True, False, True])) == {"ret": 7.5}
    metrics = stats.metrics()
    assert metrics["charts/episodic_return"] == 7.5 and metrics["charts/episodic_length"] == 50.0
    assert metrics["charts/episodic_return_normalized"] == pytest.approx(normalized_score("coinrun", "easy", 7.5))
    stats.clear()
    assert stats.metrics() == {}
