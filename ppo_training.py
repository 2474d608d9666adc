"""PPO on Procgen with Impala / Impoola / Nature encoders: the paper's PPO agent, top to bottom.

    python ppo_training.py --env_id fruitbot --distribution_mode hard

Defaults are the paper's (the release's) settings; see README.md for every option.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from impoola.openmp import sleep_idle_threads

sleep_idle_threads()  # before torch loads OpenMP: idle torch threads sleep instead of spinning on Procgen's cores

import numpy as np  # noqa: E402
import torch  # noqa: E402

from impoola.analysis.dormant import dormant_batch, dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.checkpoint import load_resume_checkpoint, load_state_strict, save_checkpoint
from impoola.cli import run_command, user_errors
from impoola.config import (
    BaselineOptions, EnvOptions, EvalOptions, LoggingOptions, ModelOptions, PerformanceOptions, RunOptions,
    check_baseline_model,
)
from impoola.envs.games import NUM_ACTIONS, level_range, normalized_score
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.envs.wrappers import RewardNormalizer
from impoola.evaluation.episodes import evaluate_scores
from impoola.models.agents import PPOAgent, build_agent
from impoola.optim import build_adam
from impoola.options import Checked, Float, Int, Maybe, flat_options, refuse_unused
from impoola.performance import (
    StepTransfer, compile_agent, compiled, configure_torch, prepare_agent, run_headline, select_device,
)
from impoola.ppo import LOSS_KEYS, PPOLoss, RolloutBuffer, compute_gae, explained_variance, ppo_loss
from impoola.pruning import GradualPruner
from impoola.redo import ReDo
from impoola.replay import available_memory
from impoola.rundir import RunDir, check_output_dir
from impoola.runlog import RunLog
from impoola.seeding import rng_state, seed_everything, set_rng_state
from impoola.session import TrainingSession, checkpoint_due
from impoola.startup import check_buildable, check_memory_need, check_resume, check_wandb


@dataclass(frozen=True)
class Args(Checked):
    env: EnvOptions = field(default_factory=EnvOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    baselines: BaselineOptions = field(default_factory=BaselineOptions)
    # The algorithm: PPO's hyperparameters (the release's values).
    total_timesteps: Int(1) = 25_000_000
    """environment steps (run in whole iterations of num_envs x num_steps)"""
    learning_rate: Maybe(Float(0, 1, low_open=True)) = None
    """Adam learning rate at τ=2 (default 3.5e-4; 5e-4 for nature), divided by τ/2 unless --no-scale_lr"""
    scale_lr: bool = True
    """rescale the learning rate by 2/τ (the release's rule)"""
    num_envs: Int(1, 4096) = 64
    """parallel training environments"""
    num_steps: Int(1, 2**20) = 256
    """steps per environment per rollout"""
    anneal_lr: bool = False
    """linearly anneal the learning rate to 0 (the hard-mode runs used it)"""
    gamma: Float(0, 1) = 0.99
    """discount factor γ"""
    gae_lambda: Float(0, 1) = 0.95
    """GAE λ"""
    num_minibatches: Int(1) = 8
    """minibatches per epoch (must divide num_envs x num_steps)"""
    update_epochs: Int(1, 1000) = 3
    """epochs over each rollout"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: Float(0, 10, low_open=True) = 0.2
    """PPO's surrogate clipping ε"""
    clip_vloss: bool = False
    """clip the value loss (off, as published: the release's flag had no effect)"""
    ent_coef: Float(0, 10) = 0.01
    """entropy bonus coefficient"""
    vf_coef: Float(0, 10) = 0.5
    """value loss coefficient"""
    max_grad_norm: Float(0, low_open=True) = 0.5
    """gradient clipping: the largest global L2 norm"""
    target_kl: Maybe(Float(0, low_open=True)) = None
    """stop the epoch loop of an iteration once approx_kl exceeds this"""
    adam_eps_form: Literal["torch", "tf"] = "torch"
    """where Adam adds its ε = 1e-5: torch (to the bias-corrected √v, torch.optim.Adam; the release) or tf (to the
    uncorrected √v, TF's AdamOptimizer; OpenAI's train-procgen): impoola/optim.py"""
    normalize_reward: bool = True
    """gym 0.26 NormalizeReward rule (divide by the std of the discounted return), then clip"""
    reward_norm_gamma: Maybe(Float(0, 1)) = None
    """discount of the return whose running std normalises the rewards (default: --gamma, the release; OpenAI's
    train-procgen used VecNormalize's default, 0.99, with γ = 0.999)"""
    reward_clip: Float(0, low_open=True) = 10.0
    """clip normalised rewards to [-reward_clip, reward_clip]"""
    run: RunOptions = field(default_factory=lambda: RunOptions(exp_name="ppo"))
    eval: EvalOptions = field(default_factory=EvalOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    speed: PerformanceOptions = field(default_factory=PerformanceOptions)

    def check(self) -> None:
        check_baseline_model(self.model, self.baselines)
        if not self.normalize_reward:
            refuse_unused(self, ("reward_clip", "reward_norm_gamma"), "with --normalize_reward")
        batch_size = self.num_envs * self.num_steps
        if batch_size % self.num_minibatches:
            raise ValueError(f"invalid num_minibatches {self.num_minibatches}: it must divide the batch "
                             f"num_envs*num_steps = {batch_size}")
        if self.norm_adv and batch_size // self.num_minibatches < 2:
            raise ValueError(f"invalid num_minibatches {self.num_minibatches}: minibatches of "
                             f"{batch_size // self.num_minibatches} sample; valid: at most {batch_size // 2} with "
                             "--norm_adv (the advantage std needs 2 samples)")
        if self.total_timesteps < batch_size:
            raise ValueError(f"invalid total_timesteps {self.total_timesteps}; valid: at least one batch "
                             f"(num_envs*num_steps = {batch_size})")

    @property
    def model_name(self) -> str:
        """Short model name with the baseline's suffix, e.g. impala_s2_pruned."""
        return self.model.model_name + self.baselines.suffix


def reward_discount(args: Args) -> float:
    """The discount of the return the reward normaliser tracks: --reward_norm_gamma, else γ."""
    return args.gamma if args.reward_norm_gamma is None else args.reward_norm_gamma


def base_learning_rate(args: Args) -> float:
    """The learning rate after the release's 2/τ rescaling."""
    lr = args.learning_rate if args.learning_rate is not None else (
        5e-4 if args.model.encoder == "nature" else 3.5e-4)
    return lr * 2.0 / args.model.scale if args.scale_lr else lr


RECENT_EPISODES = 100  # charts/episodic_{return,length}_last100: the window of train-procgen's eprewmean/eplenmean
ADAM_EPS = 1e-5


def rollout_bytes(args: Args) -> int:
    """Host/device memory of the rollout storage: uint8 frames plus six float32 values per step and env."""
    return args.num_envs * args.num_steps * (math.prod(OBS_SHAPE) + 6 * 4)


def update(agent: PPOAgent, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., PPOLoss],
           batch: dict[str, torch.Tensor], args: Args) -> torch.Tensor:
    """PPO update on one rollout: epochs of shuffled minibatches, stopping after the epoch whose last approx_kl
    exceeds target_kl; returns the loss parts' means over the minibatches (LOSS_KEYS order), on the device."""
    batch_size = len(batch["obs"])
    minibatch_size = batch_size // args.num_minibatches
    loss_sums = torch.zeros(len(LOSS_KEYS), device=batch["obs"].device)
    num_updates = 0
    for _ in range(args.update_epochs):
        permutation = torch.randperm(batch_size, device=batch["obs"].device)
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
            loss_sums += out.parts()
            num_updates += 1
        if args.target_kl is not None and out.approx_kl.item() > args.target_kl:
            break
    return loss_sums / num_updates


def main(args: Args) -> dict[str, float]:
    env, model, run = args.env, args.model, args.run
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    eval_interval = args.eval.eval_every_fraction * num_iterations * batch_size
    # Start-up: every check before the run directory is taken; a failure after it removes what it created.
    with user_errors():
        check_wandb(args.logging)
        check_buildable("ppo", model, NUM_ACTIONS)
        check_memory_need("num_envs x num_steps", rollout_bytes(args), available_memory(),
                          "fewer --num_envs or --num_steps")
        check_output_dir("output_dir", run.output_dir)
        run_dir = RunDir(run.output_dir, run.resolved_run_name(env.env_id, args.model_name))
        run_dir.acquire(run.resume)
    with TrainingSession(run_dir, run.checkpoint_signals) as session:
        with user_errors(), run_dir.starting():
            if run_dir.release_if_done(args.total_timesteps):
                return {}
            # --resume continues from the newest checkpoint; a run killed before its first one starts afresh.
            checkpoint = load_resume_checkpoint(
                run_dir.path, flat_options(args), "ppo",
                check=lambda payload: check_resume(payload, num_iterations * batch_size, args.total_timesteps),
            ) if run.resume else None
            device = select_device(run.cuda)
            configure_torch(args.speed, device)
            seed_everything(run.seed, run.torch_deterministic)

            # Environments: training levels of the track; rewards normalised for training only.
            start_level, num_levels = level_range(env.track, env.distribution_mode, "train")
            envs = session.own(ProcgenVecEnv(env.env_id, args.num_envs, env.distribution_mode, start_level,
                                             num_levels, seed=run.seed, num_threads=env.procgen_threads))
            reward_normalizer = RewardNormalizer(args.num_envs, reward_discount(args), clip=args.reward_clip)

            agent = prepare_agent(build_agent("ppo", model, NUM_ACTIONS), args.speed, device)  # channels-last, bf16
            learning_rate = base_learning_rate(args)
            optimizer = build_adam(agent.parameters(), learning_rate, ADAM_EPS, args.adam_eps_form)
            # Baselines: pruning masks are part of the agent's state, so they are built before a checkpoint loads.
            baselines = args.baselines
            pruner = GradualPruner(agent, baselines.pruning_mode, num_iterations, baselines.pruning_target,
                                   baselines.pruning_start, baselines.pruning_end) if baselines.pruning else None
            redo = ReDo(agent, optimizer, baselines.redo_tau, baselines.redo_every,
                        baselines.redo_mode) if baselines.redo else None
            storage = RolloutBuffer(args.num_steps, args.num_envs, envs.single_observation_space.shape, device)

            global_step, start_iteration, next_eval_step, elapsed = 0, 1, eval_interval, 0.0
            recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)  # the last 100 finished training episodes
            recent_lengths: deque[float] = deque(maxlen=RECENT_EPISODES)
            next_obs_np, _ = envs.reset()
            next_done_np = np.zeros(args.num_envs, dtype=bool)
            if checkpoint is not None:
                load_state_strict(agent, checkpoint["agent"], f"{args.model_name} agent")
                optimizer.load_state_dict(checkpoint["optimizer"])
                optimizer.param_groups[0]["lr"] = learning_rate  # a changed --learning_rate applies (and is recorded)
                reward_normalizer.load_state_dict(checkpoint["reward_normalizer"])
                envs.set_state(checkpoint["env_state"])
                next_obs_np, next_done_np = checkpoint["next_obs"], checkpoint["next_done"]
                global_step, next_eval_step = checkpoint["global_step"], checkpoint["next_eval_step"]
                start_iteration, elapsed = checkpoint["iteration"] + 1, checkpoint["elapsed"]
                recent_returns.extend(checkpoint.get("recent_returns", ()))
                recent_lengths.extend(checkpoint.get("recent_lengths", ()))
                set_rng_state(checkpoint["rng"])
                if checkpoint.get("last_obs") is not None:  # resumed after the last iteration: the final dormant batch
                    batch = {"obs": checkpoint["last_obs"].to(device)}

            config = {**flat_options(args), "run_name": run_dir.name, "model_name": args.model_name,
                      "batch_size": batch_size, "minibatch_size": minibatch_size, "num_iterations": num_iterations,
                      "base_learning_rate": learning_rate, "device": str(device)}
            logging = args.logging
            log = session.own(RunLog(
                run_dir, config, num_iterations * batch_size, logging.wandb_mode, logging.wandb_project,
                logging.wandb_entity, (args.model_name, env.env_id, env.track, *logging.wandb_tags),
                start_step=global_step, progress=logging.progress_bar,
                keep_rows=checkpoint.get("metrics_rows") if checkpoint is not None else 0))

        def save(iteration: int) -> None:
            log.sync()
            save_checkpoint(run_dir.checkpoints, global_step, {
                "agent": agent.state_dict(), "optimizer": optimizer.state_dict(), "args": flat_options(args),
                "agent_kind": "ppo", "num_actions": NUM_ACTIONS, "global_step": global_step, "iteration": iteration,
                "next_eval_step": next_eval_step, "elapsed": elapsed,
                "reward_normalizer": reward_normalizer.state_dict(), "env_state": envs.get_state(),
                "next_obs": next_obs_np, "next_done": next_done_np, "rng": rng_state(),
                "metrics_rows": log.rows, "recent_returns": list(recent_returns),
                "recent_lengths": list(recent_lengths),
                "last_obs": dormant_batch("ppo", batch["obs"]) if iteration == num_iterations else None,
            }, keep=run.keep_checkpoints)

        def evaluate(phase: str, num_episodes: int) -> dict[str, float]:
            """The evaluations `impoola.evaluation.tracks` lists for PPO in `phase`; optionally an episode's video."""
            video = run_dir.video(global_step) if args.eval.capture_video else None
            return evaluate_scores(agent, env, run.seed, args.eval.num_eval_envs or args.num_envs, device, "ppo", phase,
                                   num_episodes, video)

        if checkpoint is None:
            log.log({**network_stats(agent, device),
                     **dormant_metrics(agent, torch.from_numpy(next_obs_np).to(device))}, global_step)
        compile_agent(agent, args.speed, device)  # after network_stats: torchinfo's hooks must not be compiled in
        log.headline(run_headline(device, args.speed, args.model_name, agent, envs.num_threads))
        loss_fn = compiled(ppo_loss, args.speed, device)
        to_device = StepTransfer(args.num_envs, envs.single_observation_space.shape, device)

        guard = session.guard(agent, LOSS_KEYS)
        start_time = time.time() - elapsed
        for iteration in range(start_iteration, num_iterations + 1):
            iteration_start = time.time()
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * learning_rate

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
                    log.progress(global_step, ret=float(np.mean(episode_returns)))
                else:
                    log.progress(global_step)

            # Generalized advantage estimation, bootstrapped from the value of the next observation.
            with torch.inference_mode():
                next_value = agent.get_value(next_obs).flatten()
            advantages, returns = compute_gae(storage.rewards, storage.values, storage.dones, next_value, next_done,
                                              args.gamma, args.gae_lambda)
            batch = storage.flat(advantages.clone(), returns.clone())

            # PPO update: epochs of shuffled minibatches, losses summed on the device and read once.
            mean_losses = update(agent, optimizer, loss_fn, batch, args)

            redo_metrics = redo.maybe_reset(iteration, dormant_batch("ppo", batch["obs"])) if redo is not None else {}

            # Logging: one row per iteration, episode statistics aggregated over the iteration.
            elapsed = time.time() - start_time
            losses = guard.read(mean_losses, iteration, global_step)  # the iteration's one sync
            metrics = {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/SPS": batch_size / (time.time() - iteration_start),
                "charts/elapsed_train_time": elapsed,
                **dict(zip(LOSS_KEYS, losses)),
                "losses/explained_variance": explained_variance(batch["values"], batch["returns"]),
                **redo_metrics,
            }
            if episode_returns:
                mean_return = float(np.mean(episode_returns))
                metrics["charts/episodic_return"] = mean_return
                metrics["charts/episodic_return_normalized"] = normalized_score(
                    env.env_id, env.distribution_mode, mean_return)
                metrics["charts/episodic_length"] = float(np.mean(episode_lengths))
                recent_returns.extend(episode_returns)
                metrics["charts/episodic_return_last100"] = float(np.mean(recent_returns))
                recent_lengths.extend(episode_lengths)
                metrics["charts/episodic_length_last100"] = float(np.mean(recent_lengths))
            evaluated = global_step >= next_eval_step and iteration < num_iterations
            if evaluated:
                next_eval_step = global_step + eval_interval
                if args.eval.num_eval_episodes > 0:
                    metrics.update(evaluate("during", args.eval.num_eval_episodes))
                metrics.update(dormant_metrics(agent, dormant_batch("ppo", batch["obs"])))
            if pruner is not None:  # the release prunes at the end of the iteration, after its evaluation
                metrics["charts/sparsity"] = pruner.step(iteration)
            log.log(metrics, global_step)

            session.checkpoint_or_exit(lambda: save(iteration), global_step)
            if checkpoint_due(iteration, run.checkpoint_every, evaluated):
                save(iteration)

        # Last checkpoint, then the final evaluation on more episodes, dormant neurons on the last rollout, done marker
        # (a run killed or signalled in between redoes them from that checkpoint, identically).
        save(num_iterations)
        final = {}
        if args.eval.num_final_eval_episodes > 0:
            final.update(evaluate("final", args.eval.num_final_eval_episodes))
        final.update(dormant_metrics(agent, dormant_batch("ppo", batch["obs"])))
        session.checkpoint_or_exit(lambda: None, global_step)  # the last checkpoint is already written
        log.log(final, global_step)
        log.mark_done()
        return final


if __name__ == "__main__":
    sys.exit(run_command(Args, main, algorithm="ppo", description=__doc__))
