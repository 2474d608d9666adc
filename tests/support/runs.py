"""The options of tiny real PPO and DQN runs (a few seconds each on real Procgen), and reading what a run wrote."""

from __future__ import annotations

from pathlib import Path

TINY_PPO = dict(
    env_id="bigfish", num_envs=2, num_steps=16, total_timesteps=64, num_minibatches=2, update_epochs=1,
    num_eval_episodes=2, num_final_eval_episodes=2, eval_every_fraction=0.5, scale=1.0, procgen_threads=1,
    capture_video=True,
    wandb_mode="disabled", progress_bar=False,
)

TINY_DQN = dict(
    env_id="starpilot", num_envs=2, total_timesteps=64, buffer_size=64, batch_size=8, learning_starts=16,
    target_network_frequency=16, log_every=4, num_eval_episodes=2, num_final_eval_episodes=2, eval_every_fraction=0.5,
    scale=1.0, procgen_threads=1, wandb_mode="disabled", progress_bar=False,
)


def tiny_ppo_args(output_dir: Path, **overrides):
    """Args of a real PPO run that takes a few seconds: 2 envs x 16 steps x 2 iterations."""
    from impoola.options import from_flat
    from ppo_training import Args

    return from_flat(Args, output_dir=str(output_dir), **{**TINY_PPO, **overrides})


def tiny_dqn_args(output_dir: Path, **overrides):
    """Args of a real DQN run that takes a few seconds: 2 envs x 32 vector steps on starpilot (short greedy
    episodes)."""
    from dqn_training import Args
    from impoola.options import from_flat

    return from_flat(Args, output_dir=str(output_dir), **{**TINY_DQN, **overrides})


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per tag, as TensorBoard shows them (purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tb_dir))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
