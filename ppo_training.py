"""PPO on Procgen with Impala / Impoola / Nature encoders: the paper's PPO agent, top to bottom.

    python ppo_training.py --env_id fruitbot --distribution_mode hard

Defaults are the paper's (the release's) settings; see README.md for every option.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from impoola.analysis.dormant import dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.checkpoint import load_resume_checkpoint, load_state_strict, save_checkpoint
from impoola.cli import (
    EXIT_PREEMPTED, EnvOptions, FiniteGuard, RunOptions, StopFlag, default_run_name, parse_cli, require_positive,
    rng_state, seed_everything, select_device, set_rng_state, user_errors,
)
from impoola.config import BaselineOptions, ModelOptions
from impoola.envs.games import NUM_ACTIONS, level_range, normalized_score
from impoola.envs.procgen import ProcgenVecEnv
from impoola.envs.wrappers import RewardNormalizer
from impoola.evaluation import evaluate_scores
from impoola.models.agents import build_agent
from impoola.performance import (
    PerformanceOptions, StepTransfer, compile_agent, compiled, configure_torch, prepare_agent,
)
from impoola.ppo import RolloutBuffer, compute_gae, explained_variance, ppo_loss
from impoola.pruning import GradualPruner
from impoola.redo import ReDo
from impoola.runlog import RunLog, is_done, prepare_run_dir


@dataclass
class Args(PerformanceOptions, ModelOptions, BaselineOptions, EnvOptions, RunOptions):
    exp_name: str = "ppo"
    """experiment name, part of the run name"""
    total_timesteps: int = 25_000_000
    """environment steps (run in whole iterations of num_envs x num_steps)"""
    learning_rate: float | None = None
    """Adam learning rate at τ=2 (default 3.5e-4; 5e-4 for nature), divided by τ/2 unless --no-scale_lr"""
    scale_lr: bool = True
    """rescale the learning rate by 2/τ (the release's rule)"""
    num_envs: int = 64
    num_steps: int = 256
    """steps per environment per rollout"""
    anneal_lr: bool = False
    """linearly anneal the learning rate to 0 (the hard-mode runs used it)"""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 8
    update_epochs: int = 3
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: float = 0.2
    clip_vloss: bool = False
    """clip the value loss (off, as published: the release's flag had no effect)"""
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    """stop the epoch loop of an iteration once approx_kl exceeds this"""
    normalize_reward: bool = True
    """gym 0.26 NormalizeReward rule (divide by the std of the discounted return), then clip"""
    reward_clip: float = 10.0

    @property
    def model_name(self) -> str:
        """Short model name with the baseline's suffix, e.g. impala_s2_pruned."""
        return super().model_name + self.suffix


def validate(args: Args) -> None:
    """Reject bad input with a one-line ValueError naming the value and the valid ones."""
    args.validate_env()
    args.validate_run()
    args.validate()
    args.validate_baselines()
    args.validate_performance()
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
        require_positive(name, getattr(args, name))
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches:
        raise ValueError(
            f"invalid num_minibatches {args.num_minibatches}: it must divide the batch num_envs*num_steps = {batch_size}"
        )
    if args.total_timesteps < batch_size:
        raise ValueError(
            f"invalid total_timesteps {args.total_timesteps}; valid: at least one batch (num_envs*num_steps = {batch_size})"
        )
    if args.learning_rate is not None:
        require_positive("learning_rate", args.learning_rate)


def base_learning_rate(args: Args) -> float:
    """The learning rate after the release's 2/τ rescaling."""
    lr = args.learning_rate if args.learning_rate is not None else (5e-4 if args.encoder == "nature" else 3.5e-4)
    return lr * 2.0 / args.scale if args.scale_lr else lr


RECENT_EPISODES = 100  # charts/episodic_return_last100: the window of train-procgen's eprewmean

LOSS_KEYS = ("losses/loss", "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/old_approx_kl",
             "losses/approx_kl", "losses/clipfrac")


def main(args: Args) -> dict[str, float]:
    with user_errors():
        validate(args)
        run_name = args.run_name or default_run_name(args.env_id, args.exp_name, args.model_name, args.seed)
        run_dir = prepare_run_dir(args.output_dir, run_name, args.resume)
        if is_done(run_dir):
            print(f"run {run_name} is already complete ({run_dir / 'done'} exists); nothing to do")
            return {}
        # --resume continues from the newest checkpoint; a run killed before its first one starts afresh.
        checkpoint = load_resume_checkpoint(run_dir, dataclasses.asdict(args), "ppo") if args.resume else None
    device = select_device(args.cuda)
    configure_torch(args, device)
    seed_everything(args.seed, args.torch_deterministic)
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    eval_interval = args.eval_every_fraction * num_iterations * batch_size

    # Environments: training levels of the track; rewards normalised for training only.
    start_level, num_levels = level_range(args.track, args.distribution_mode, "train")
    envs = ProcgenVecEnv(args.env_id, args.num_envs, args.distribution_mode, start_level, num_levels,
                         seed=args.seed, num_threads=args.procgen_threads)
    reward_normalizer = RewardNormalizer(args.num_envs, args.gamma, clip=args.reward_clip)

    agent = prepare_agent(build_agent("ppo", args, NUM_ACTIONS), args, device)  # channels-last, bf16 autocast
    learning_rate = base_learning_rate(args)
    optimizer = torch.optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)
    # Baselines: pruning masks are part of the agent's state, so they are built before a checkpoint loads.
    pruner = GradualPruner(agent, args.pruning_mode, num_iterations, args.pruning_target, args.pruning_start,
                           args.pruning_end) if args.pruning else None
    redo = ReDo(agent, optimizer, args.redo_tau, args.redo_every) if args.redo else None
    storage = RolloutBuffer(args.num_steps, args.num_envs, envs.single_observation_space.shape, device)

    global_step, start_iteration, next_eval_step, elapsed = 0, 1, eval_interval, 0.0
    recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)  # the last 100 finished training episodes
    next_obs_np, _ = envs.reset()
    next_done_np = np.zeros(args.num_envs, dtype=bool)
    if checkpoint is not None:
        with user_errors():
            load_state_strict(agent, checkpoint["agent"], f"{args.model_name} agent")
        optimizer.load_state_dict(checkpoint["optimizer"])
        reward_normalizer.load_state_dict(checkpoint["reward_normalizer"])
        envs.set_state(checkpoint["env_state"])
        next_obs_np, next_done_np = checkpoint["next_obs"], checkpoint["next_done"]
        global_step, next_eval_step = checkpoint["global_step"], checkpoint["next_eval_step"]
        start_iteration, elapsed = checkpoint["iteration"] + 1, checkpoint["elapsed"]
        recent_returns.extend(checkpoint.get("recent_returns", ()))
        set_rng_state(checkpoint["rng"])
        if checkpoint.get("last_obs") is not None:  # resumed after the last iteration: the final dormant batch
            batch = {"obs": checkpoint["last_obs"].to(device)}

    config = {**dataclasses.asdict(args), "run_name": run_name, "model_name": args.model_name,
              "batch_size": batch_size, "minibatch_size": minibatch_size, "num_iterations": num_iterations,
              "base_learning_rate": learning_rate, "device": str(device)}
    log = RunLog(run_dir, config, num_iterations * batch_size, args.wandb_mode, args.wandb_project,
                 args.wandb_entity, (args.model_name, args.env_id, args.track, *args.wandb_tags),
                 start_step=global_step, progress=args.progress_bar,
                 keep_rows=checkpoint.get("metrics_rows") if checkpoint is not None else 0)

    def save(iteration: int) -> None:
        log.sync()
        save_checkpoint(run_dir / "checkpoints", global_step, {
            "agent": agent.state_dict(), "optimizer": optimizer.state_dict(), "args": dataclasses.asdict(args),
            "agent_kind": "ppo", "num_actions": NUM_ACTIONS, "global_step": global_step, "iteration": iteration,
            "next_eval_step": next_eval_step, "elapsed": elapsed, "reward_normalizer": reward_normalizer.state_dict(),
            "env_state": envs.get_state(), "next_obs": next_obs_np, "next_done": next_done_np, "rng": rng_state(),
            "metrics_rows": log.rows, "recent_returns": list(recent_returns),
            "last_obs": batch["obs"][:256] if iteration == num_iterations else None,
        }, keep=args.keep_checkpoints)

    def evaluate(num_episodes: int, splits: tuple[str, ...]) -> dict[str, float]:
        """The sampling policy on the track's train/test levels; optionally a video of one episode."""
        video = run_dir / "videos" / f"step_{global_step:012d}.mp4" if args.capture_video else None
        return evaluate_scores(agent, args, device, num_episodes, splits, greedy=False, video_path=video)

    if checkpoint is None:
        log.log({**network_stats(agent, device),
                 **dormant_metrics(agent, torch.from_numpy(next_obs_np).to(device))}, global_step)
    compile_agent(agent, args, device)  # after network_stats: torchinfo's hooks must not be compiled in
    loss_fn = compiled(ppo_loss, args, device)
    to_device = StepTransfer(args.num_envs, envs.single_observation_space.shape, device)

    stop = StopFlag(args.checkpoint_signals)
    guard = FiniteGuard(agent, LOSS_KEYS, run_dir / "checkpoints", (log.close, envs.close, stop.close))
    start_time = time.time() - elapsed
    for iteration in range(start_iteration, num_iterations + 1):
        iteration_start = time.time()
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * learning_rate
        sparsity = pruner.step(iteration) if pruner is not None else None

        # Rollout: uint8 observations go to the device once; actions come back once per step.
        episode_returns, episode_lengths = [], []
        next_obs = torch.from_numpy(next_obs_np).to(device)
        next_done = torch.from_numpy(next_done_np).to(device, torch.float32)
        for step in range(args.num_steps):
            global_step += args.num_envs
            storage.obs[step] = next_obs
            storage.dones[step] = next_done
            with torch.inference_mode():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            storage.values[step] = value.flatten()
            storage.actions[step] = action
            storage.logprobs[step] = logprob
            next_obs_np, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
            next_done_np = terminated | truncated
            if args.normalize_reward:
                reward = reward_normalizer(reward, next_done_np)
            next_obs, storage.rewards[step], next_done = to_device(next_obs_np, reward, next_done_np)  # one copy
            if next_done_np.any():
                episode_returns.extend(info["episode_return"][next_done_np].tolist())
                episode_lengths.extend(info["episode_length"][next_done_np].tolist())

        # Generalized advantage estimation, bootstrapped from the value of the next observation.
        with torch.inference_mode():
            next_value = agent.get_value(next_obs).flatten()
        advantages, returns = compute_gae(storage.rewards, storage.values, storage.dones, next_value, next_done,
                                          args.gamma, args.gae_lambda)
        batch = storage.flat(advantages.clone(), returns.clone())

        # PPO update: epochs of shuffled minibatches, losses summed on the device and read once.
        loss_sums = torch.zeros(7, device=device)
        num_updates = 0
        for epoch in range(args.update_epochs):
            permutation = torch.randperm(batch_size, device=device)
            for start in range(0, batch_size, minibatch_size):
                mb = permutation[start:start + minibatch_size]
                newlogits, newvalue = agent(batch["obs"][mb])
                out = loss_fn(newlogits, newvalue, batch["actions"][mb], batch["logprobs"][mb], batch["values"][mb],
                              batch["returns"][mb], batch["advantages"][mb], args.clip_coef, args.ent_coef,
                              args.vf_coef, args.norm_adv, args.clip_vloss)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
                loss_sums += torch.stack([out.loss, out.pg_loss, out.v_loss, out.entropy, out.old_approx_kl,
                                          out.approx_kl, out.clipfrac]).detach()
                num_updates += 1
            if args.target_kl is not None and out.approx_kl.item() > args.target_kl:
                break

        reset_units = redo.maybe_reset(iteration, batch["obs"][:256]) if redo is not None else None

        # Logging: one row per iteration, episode statistics aggregated over the iteration.
        elapsed = time.time() - start_time
        losses = guard.read(loss_sums / num_updates, iteration, global_step)  # the iteration's one sync
        metrics = {
            "charts/learning_rate": optimizer.param_groups[0]["lr"],
            "charts/SPS": batch_size / (time.time() - iteration_start),
            "charts/elapsed_train_time": elapsed,
            **dict(zip(LOSS_KEYS, losses)),
            "losses/explained_variance": explained_variance(batch["values"], batch["returns"]),
        }
        if sparsity is not None:
            metrics["charts/sparsity"] = sparsity
        if reset_units is not None:
            metrics["charts/redo_reset_units"] = reset_units
        if episode_returns:
            mean_return = float(np.mean(episode_returns))
            metrics["charts/episodic_return"] = mean_return
            metrics["charts/episodic_return_normalized"] = normalized_score(
                args.env_id, args.distribution_mode, mean_return)
            metrics["charts/episodic_length"] = float(np.mean(episode_lengths))
            recent_returns.extend(episode_returns)
            metrics["charts/episodic_return_last100"] = float(np.mean(recent_returns))
        if global_step >= next_eval_step and iteration < num_iterations:
            next_eval_step = global_step + eval_interval
            if args.num_eval_episodes > 0:
                splits = ("train", "test") if args.track == "generalization" else ("train",)
                metrics.update(evaluate(args.num_eval_episodes, splits))
            metrics.update(dormant_metrics(agent, batch["obs"][:256]))
        log.log(metrics, global_step)
        log.progress(global_step, SPS=metrics["charts/SPS"], ret=metrics.get("charts/episodic_return", math.nan))

        if stop.signal is not None:
            save(iteration)
            log.close()
            envs.close()
            stop.close()
            print(f"received signal {stop.name}: checkpoint written at step {global_step}; continue with --resume")
            raise SystemExit(EXIT_PREEMPTED)
        if iteration % args.checkpoint_every == 0 or "scores/eval_avg_return_train" in metrics:
            save(iteration)

    # Last checkpoint, then the final evaluation on more episodes, dormant neurons on the last rollout, done marker
    # (a run killed in between redoes them from that checkpoint, identically).
    save(num_iterations)
    final = {}
    if args.num_final_eval_episodes > 0:
        final.update(evaluate(args.num_final_eval_episodes, ("train", "test") if args.track == "generalization" else ("test",)))
    final.update(dormant_metrics(agent, batch["obs"][:256]))
    log.log(final, global_step)
    log.mark_done()
    log.close()
    envs.close()
    stop.close()
    return final


if __name__ == "__main__":
    main(parse_cli(Args))
