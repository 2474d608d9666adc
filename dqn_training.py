"""DQN on Procgen with Impala / Impoola / Nature encoders: the paper's DQN agent, top to bottom.

    python dqn_training.py --env_id bigfish

Double DQN with 3-step returns and prioritized replay (frames stored once, impoola/replay/). Defaults are
the release's settings, including its odd n-step storage, priorities, importance weights, loss and
exploration; `--replay_mode textbook` switches all five to the textbook form (facts §3):
- release: one coin flip per vectorized step decides random or greedy actions for all envs; n-step transitions
  bootstrap with γ from s_{t+1} and episode tails are dropped; priorities |w·δ|^α + ε; weights over their batch
  mean; loss mean((w·δ)²).
- textbook: ε is drawn per env; bootstrap with γⁿ from s_{t+n}, tails flushed; priorities |δ|^α + ε; weights
  over their maximum; loss mean(w·δ²).
Evaluation is greedy. Resuming (--resume) restores the networks, optimizer, envs and RNGs, and the replay memory
when the run saves it (--save_buffer): then the resumed run is bitwise the uninterrupted one. Without it the
memory is refilled from scratch and learning starts again `learning_starts` env steps after the resume point
(ε continues its schedule from the checkpoint's global step).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field

from impoola.openmp import sleep_idle_threads

sleep_idle_threads()  # before torch loads OpenMP: idle torch threads sleep instead of spinning on Procgen's cores

import numpy as np  # noqa: E402
import torch  # noqa: E402

from impoola.analysis.dormant import dormant_batch, dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.checkpoint import load_resume_checkpoint, load_state_strict, save_checkpoint
from impoola.cli import run_command, user_errors
from impoola.config import EnvOptions, EvalOptions, LoggingOptions, ModelOptions, PerformanceOptions, RunOptions
from impoola.dqn import dqn_loss
from impoola.envs.games import NUM_ACTIONS, check_choice, level_range, normalized_score
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.evaluation.episodes import evaluate_scores
from impoola.models.agents import DQNAgent, build_agent
from impoola.options import Checked, Float, Int, Maybe, flat_options, refuse_unused
from impoola.performance import compile_agent, configure_torch, prepare_agent, run_headline, select_device
from impoola.replay import (
    ReplayMemory, available_memory, check_replay_disk, has_snapshot, keep_only, restore_replay, rules_for,
    save_snapshot,
)
from impoola.rundir import RunDir, check_output_dir
from impoola.runlog import RunLog
from impoola.seeding import rng_state, seed_everything, set_rng_state
from impoola.session import TrainingSession, checkpoint_due
from impoola.startup import check_buildable, check_memory_need, check_resume, check_wandb

EXPLORATIONS = ("egreedy", "softmax")
LOSS_KEYS = ("losses/td_loss", "losses/q_values")


@dataclass(frozen=True)
class Args(Checked):
    env: EnvOptions = field(default_factory=EnvOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    # The algorithm: DQN's hyperparameters (the release's values).
    total_timesteps: Int(1) = 25_000_000
    """environment steps (run in whole vectorized steps of num_envs)"""
    learning_rate: Maybe(Float(0, 1, low_open=True)) = None
    """Adam learning rate at τ=2 (default 1e-4), divided by τ/2 unless --no-scale_lr"""
    scale_lr: bool = True
    """rescale the learning rate by 2/τ (the release's rule)"""
    anneal_lr: bool = False
    """linearly anneal the learning rate to 0 over the run"""
    num_envs: Int(1, 4096) = 128
    """parallel training environments"""
    buffer_size: Int(1) = 1_000_000
    """replay capacity in transitions (each frame stored once: ~12 KiB a transition, ~11.5 GiB at 1e6)"""
    batch_size: Int(1, 2**20) = 512
    """transitions per gradient step"""
    gamma: Float(0, 1) = 0.99
    """discount factor γ"""
    n_step: Int(1, 100) = 3
    """steps of the n-step return (longer ones outlast short Procgen episodes and are rarely stored)"""
    target_network_frequency: Int(1) = 64_000
    """env steps between target network updates: every ceil(this / num_envs) vectorized steps"""
    tau: Float(0, 1, low_open=True) = 1.0
    """target update rate (not the width scale): 1 copies the Q network, < 1 is Polyak averaging at each update"""
    start_e: Float(0, 1) = 1.0
    """ε at the start"""
    end_e: Float(0, 1) = 0.025
    """ε after the exploration phase"""
    exploration_fraction: Float(0, 1, low_open=True) = 0.1
    """fraction of total_timesteps over which ε decays linearly from start_e to end_e"""
    learning_starts: Int(0) = 250_000
    """env steps (counted from the start or the resume point) before the first gradient step (which also waits
    for batch_size stored transitions)"""
    train_frequency: Float(0, 64, low_open=True) = 1.0
    """gradient steps per vectorized env step: 2 does two each step, 0.5 one every other step"""
    max_grad_norm: Float(0, low_open=True) = 10.0
    """gradient clipping: the largest global L2 norm"""
    prioritized: bool = True
    """prioritized replay (--no-prioritized: uniform sampling, unit weights)"""
    alpha: Float(0, 1) = 0.5
    """priority exponent"""
    beta: Float(0, 1) = 0.5
    """importance-weight exponent (constant)"""
    replay_mode: str = "release"
    """release (the published behaviour) or textbook: n-step storage, priorities, weights, loss and ε draws"""
    exploration: str = "egreedy"
    """egreedy (ε schedule) or softmax (sample every action from softmax(Q / softmax_temperature); no ε)"""
    softmax_temperature: Float(0, low_open=True) = 1.0
    """temperature of softmax exploration"""
    log_every: Int(1) = 100
    """vectorized steps per logged row (training statistics are aggregated over them)"""
    save_buffer: bool = False
    """save the replay memory with each checkpoint (run_dir/replay, newest only) so --resume continues exactly;
    disk: its size (~11.4 GiB at 1e6), twice that while saving"""
    run: RunOptions = field(default_factory=lambda: RunOptions(exp_name="dqn"))
    eval: EvalOptions = field(default_factory=EvalOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    speed: PerformanceOptions = field(default_factory=PerformanceOptions)

    def check(self) -> None:
        rules_for(self.replay_mode)
        check_choice("exploration", self.exploration, EXPLORATIONS)
        if self.exploration == "softmax":
            refuse_unused(self, ("start_e", "end_e", "exploration_fraction"), "with --exploration egreedy")
        else:
            refuse_unused(self, ("softmax_temperature",), "with --exploration softmax")
        if not self.prioritized:
            refuse_unused(self, ("alpha", "beta"), "with --prioritized")
        if self.total_timesteps < self.num_envs:
            raise ValueError(f"invalid total_timesteps {self.total_timesteps}; "
                             f"valid: at least num_envs ({self.num_envs})")
        if self.buffer_size < self.batch_size:
            raise ValueError(f"invalid buffer_size {self.buffer_size}; valid: at least batch_size ({self.batch_size})")
        if self.buffer_size < self.num_envs * (self.n_step + 1):
            raise ValueError(f"invalid buffer_size {self.buffer_size}; valid: at least num_envs x (n_step + 1) "
                             f"({self.num_envs * (self.n_step + 1)})")
        if not self.learning_starts < self.total_timesteps:
            raise ValueError(f"invalid learning_starts {self.learning_starts}; "
                             f"valid: 0 <= learning_starts < total_timesteps ({self.total_timesteps})")

    @property
    def model_name(self) -> str:
        """Short model name, e.g. impoola_s2."""
        return self.model.model_name


def replay_bytes(args: Args) -> int:
    """Bytes the replay memory will allocate."""
    return ReplayMemory.required_bytes(args.buffer_size, OBS_SHAPE, args.num_envs, args.n_step, args.replay_mode,
                                       args.prioritized)


def base_learning_rate(args: Args) -> float:
    """The learning rate after the release's 2/τ rescaling."""
    lr = args.learning_rate if args.learning_rate is not None else 1e-4
    return lr * 2.0 / args.model.scale if args.scale_lr else lr


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """`start` moving linearly to `end` over `duration` steps, then `end`."""
    return end if t >= duration else start + (end - start) * t / duration


def gradient_steps(k: int, train_frequency: float) -> int:
    """Gradient steps due at the k-th learning vector step (k >= 1), so that k steps hold ⌊k·train_frequency⌋."""
    return int(k * train_frequency) - int((k - 1) * train_frequency)


def act(q_network: DQNAgent, obs: np.ndarray, epsilon: float, args: Args, device: torch.device) -> np.ndarray:
    """Actions of all envs: one H2D copy of `obs`, one D2H copy of actions (none when all are random)."""
    if args.exploration == "softmax":
        return q_network.act(torch.from_numpy(obs).to(device), False, args.softmax_temperature).cpu().numpy()
    explore = rules_for(args.replay_mode).explore(len(obs), epsilon)
    if explore.all():
        return np.random.randint(NUM_ACTIONS, size=len(obs))
    with torch.inference_mode():
        actions = q_network(torch.from_numpy(obs).to(device)).argmax(-1).cpu().numpy()
    if explore.any():
        actions = np.where(explore, np.random.randint(NUM_ACTIONS, size=len(obs)), actions)
    return actions


def train_step(q_network: DQNAgent, target_network: DQNAgent, optimizer: torch.optim.Optimizer, rb: ReplayMemory,
               args: Args) -> torch.Tensor:
    """One gradient step on one sampled batch; returns (TD loss, mean Q(s, a)) on the device, detached."""
    batch = rb.sample(args.batch_size)
    with torch.no_grad():  # Double DQN: the online network picks the next action, the target network values it
        next_actions = q_network(batch.next_obs).argmax(-1, keepdim=True)
        next_q = target_network(batch.next_obs).gather(1, next_actions).squeeze(1)
        target = batch.returns + rb.bootstrap_gamma * (1.0 - batch.dones) * next_q
    q_taken = q_network(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
    loss, _, priorities = dqn_loss(q_taken, target, batch.weights, rb.rules, args.alpha, rb.eps)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
    optimizer.step()
    rb.update_priorities(batch.indices, priorities)
    return torch.stack([loss.detach(), q_taken.detach().mean()])


@torch.no_grad()
def update_target(target_network: DQNAgent, q_network: DQNAgent, tau: float) -> None:
    """Hard copy (tau = 1) or Polyak step target ← tau·online + (1 − tau)·target."""
    for target, online in zip(target_network.parameters(), q_network.parameters()):
        if tau < 1:
            target.lerp_(online, tau)
        else:
            target.copy_(online)


def main(args: Args) -> dict[str, float]:
    env, model, run = args.env, args.model, args.run
    num_vector_steps = args.total_timesteps // args.num_envs
    total_steps = num_vector_steps * args.num_envs
    eval_interval = args.eval.eval_every_fraction * total_steps
    exploration_steps = args.exploration_fraction * total_steps
    target_every = math.ceil(args.target_network_frequency / args.num_envs)
    eval_envs = args.eval.num_eval_envs or args.num_envs
    # Start-up: every check before the run directory is taken; a failure after it removes what it created.
    with user_errors():
        check_wandb(args.logging)
        check_buildable("dqn", model, NUM_ACTIONS)
        memory_bytes = replay_bytes(args)
        check_memory_need("buffer_size", memory_bytes, available_memory(), "a smaller --buffer_size or free memory")
        check_output_dir("output_dir", run.output_dir)
        run_dir = RunDir(run.output_dir, run.resolved_run_name(env.env_id, args.model_name))
        if args.save_buffer:
            check_replay_disk(run_dir.replay, memory_bytes)
        run_dir.acquire(run.resume)
    with TrainingSession(run_dir, run.checkpoint_signals) as session:
        with user_errors(), run_dir.starting():
            if run_dir.release_if_done(args.total_timesteps):
                return {}
            # --resume continues from the newest checkpoint; a run killed before its first one starts afresh.
            checkpoint = load_resume_checkpoint(
                run_dir.path, flat_options(args), "dqn",
                prefer=has_snapshot(run_dir.replay) if args.save_buffer else None,
                check=lambda payload: check_resume(payload, total_steps, args.total_timesteps),
            ) if run.resume else None
            device = select_device(run.cuda)
            configure_torch(args.speed, device)
            seed_everything(run.seed, run.torch_deterministic)

            # Environments: the training levels of the track.
            start_level, num_levels = level_range(env.track, env.distribution_mode, "train")
            envs = session.own(ProcgenVecEnv(env.env_id, args.num_envs, env.distribution_mode, start_level,
                                             num_levels, seed=run.seed, num_threads=env.procgen_threads))

            q_network = prepare_agent(build_agent("dqn", model, NUM_ACTIONS), args.speed, device)  # channels-last, bf16
            target_network = copy.deepcopy(q_network).requires_grad_(False)
            learning_rate = base_learning_rate(args)
            optimizer = torch.optim.Adam(q_network.parameters(), lr=learning_rate, eps=1e-5)
            rb = ReplayMemory(args.buffer_size, args.num_envs, envs.single_observation_space.shape, args.n_step,
                              args.gamma, args.replay_mode, args.prioritized, args.alpha, args.beta, device=device,
                              seed=run.seed)

            global_step, start_vector_step, next_eval_step, elapsed = 0, 0, eval_interval, 0.0
            obs_np, _ = envs.reset()
            if checkpoint is not None:
                load_state_strict(q_network, checkpoint["agent"], f"{args.model_name} Q network")
                load_state_strict(target_network, checkpoint["target_network"], f"{args.model_name} target network")
                optimizer.load_state_dict(checkpoint["optimizer"])
                optimizer.param_groups[0]["lr"] = learning_rate  # a changed --learning_rate applies (and is recorded)
                envs.set_state(checkpoint["env_state"])
                obs_np = checkpoint["next_obs"]
                global_step, next_eval_step = checkpoint["global_step"], checkpoint["next_eval_step"]
                start_vector_step, elapsed = checkpoint["vector_step"], checkpoint["elapsed"]
                set_rng_state(checkpoint["rng"])
            # With --save_buffer the memory comes back from the snapshot the checkpoint names (other leftovers are
            # deleted); a refilled memory waits for learning_starts again.
            restored = args.save_buffer and restore_replay(rb, run_dir.replay, checkpoint)
            learning_start_step = (0 if restored else global_step) + args.learning_starts

            config = {**flat_options(args), "run_name": run_dir.name, "model_name": args.model_name,
                      "num_vector_steps": num_vector_steps, "target_update_every_vector_steps": target_every,
                      "base_learning_rate": learning_rate, "replay_bytes": memory_bytes, "device": str(device)}
            logging = args.logging
            log = session.own(RunLog(
                run_dir, config, total_steps, logging.wandb_mode, logging.wandb_project, logging.wandb_entity,
                (args.model_name, env.env_id, env.track, *logging.wandb_tags), start_step=global_step,
                progress=logging.progress_bar,
                keep_rows=checkpoint.get("metrics_rows") if checkpoint is not None else 0))

        def save(vector_step: int) -> None:
            # With --save_buffer the replay snapshot is written first, then the checkpoint naming it, then older
            # snapshots go: a kill anywhere in between leaves the newest checkpoint with its snapshot.
            log.sync()
            snapshot = save_snapshot(rb, run_dir.replay) if args.save_buffer else None
            save_checkpoint(run_dir.checkpoints, global_step, {
                "agent": q_network.state_dict(), "target_network": target_network.state_dict(),
                "optimizer": optimizer.state_dict(), "args": flat_options(args), "agent_kind": "dqn",
                "num_actions": NUM_ACTIONS, "global_step": global_step, "vector_step": vector_step,
                "epsilon": linear_schedule(args.start_e, args.end_e, exploration_steps, global_step),
                "next_eval_step": next_eval_step, "elapsed": elapsed, "env_state": envs.get_state(), "next_obs": obs_np,
                "rng": rng_state(), "metrics_rows": log.rows, "learning_vector_steps": learning_vector_steps,
                "replay_snapshot": snapshot,
            }, keep=run.keep_checkpoints)
            if args.save_buffer:
                keep_only(run_dir.replay, snapshot)

        def dormant() -> dict[str, float]:
            """Dormant neurons on the current observations of the first 32 envs."""
            return dormant_metrics(q_network, dormant_batch("dqn", torch.from_numpy(obs_np)).to(device))

        if checkpoint is None:
            log.log({**network_stats(q_network, device), **dormant()}, global_step)
        for network in (q_network, target_network):  # after network_stats: torchinfo's hooks must not be compiled in
            compile_agent(network, args.speed, device)
        log.headline(run_headline(device, args.speed, args.model_name, q_network, envs.num_threads))

        guard = session.guard(q_network, LOSS_KEYS)
        start_time = time.time() - elapsed
        interval_start, interval_start_step = time.time(), global_step
        episode_returns, episode_lengths = [], []
        loss_sums, num_updates = torch.zeros(2, device=device), 0
        learning_vector_steps = checkpoint["learning_vector_steps"] if restored else 0
        for vector_step in range(start_vector_step + 1, num_vector_steps + 1):
            epsilon = linear_schedule(args.start_e, args.end_e, exploration_steps, global_step)
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (vector_step - 1.0) / num_vector_steps) * learning_rate
            actions = act(q_network, obs_np, epsilon, args, device)
            next_obs_np, rewards, terminated, truncated, info = envs.step(actions)
            dones = terminated | truncated
            rb.add(obs_np, actions, rewards, dones, next_obs_np)
            obs_np = next_obs_np
            global_step += args.num_envs
            if dones.any():
                episode_returns.extend(info["episode_return"][dones].tolist())
                episode_lengths.extend(info["episode_length"][dones].tolist())
                log.progress(global_step, ret=float(np.mean(episode_returns)))
            else:
                log.progress(global_step)

            if global_step > learning_start_step and len(rb) >= args.batch_size:
                learning_vector_steps += 1
                for _ in range(gradient_steps(learning_vector_steps, args.train_frequency)):
                    loss_sums += train_step(q_network, target_network, optimizer, rb, args)
                    num_updates += 1
                if vector_step % target_every == 0:
                    update_target(target_network, q_network, args.tau)

            if vector_step % args.log_every and vector_step < num_vector_steps:
                continue
            # Logging: one row per log_every vectorized steps, statistics aggregated over them.
            losses = guard.read(loss_sums / max(num_updates, 1), vector_step, global_step)  # the row's one sync
            now = time.time()
            elapsed = now - start_time
            metrics = {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/SPS": (global_step - interval_start_step) / (now - interval_start),
                "charts/elapsed_train_time": elapsed,
            }
            if args.exploration == "egreedy":
                metrics["charts/epsilon"] = epsilon
            if num_updates:
                metrics.update(zip(LOSS_KEYS, losses))
            if episode_returns:
                mean_return = float(np.mean(episode_returns))
                metrics["charts/episodic_return"] = mean_return
                metrics["charts/episodic_return_normalized"] = normalized_score(
                    env.env_id, env.distribution_mode, mean_return)
                metrics["charts/episodic_length"] = float(np.mean(episode_lengths))
            evaluated = global_step >= next_eval_step and vector_step < num_vector_steps
            if evaluated:
                next_eval_step = global_step + eval_interval
                if args.eval.num_eval_episodes > 0:
                    video = run_dir.video(global_step) if args.eval.capture_video else None
                    metrics.update(evaluate_scores(q_network, env, run.seed, eval_envs, device, "dqn", "during",
                                                   args.eval.num_eval_episodes, video))
                metrics.update(dormant())
            log.log(metrics, global_step)
            episode_returns, episode_lengths = [], []
            loss_sums.zero_()
            num_updates = 0
            interval_start, interval_start_step = time.time(), global_step

            session.checkpoint_or_exit(lambda: save(vector_step), global_step)
            if checkpoint_due(vector_step, args.log_every * run.checkpoint_every, evaluated):
                save(vector_step)

        # Last checkpoint, then the final evaluation on more episodes, dormant neurons on the current observations, done
        # marker (a run killed or signalled in between redoes them from that
        # checkpoint).
        save(num_vector_steps)
        final = {}
        if args.eval.num_final_eval_episodes > 0:
            video = run_dir.video(global_step) if args.eval.capture_video else None
            final.update(evaluate_scores(q_network, env, run.seed, eval_envs, device, "dqn", "final",
                                         args.eval.num_final_eval_episodes, video))
        final.update(dormant())
        session.checkpoint_or_exit(lambda: None, global_step)  # the last checkpoint is already written
        log.log(final, global_step)
        log.mark_done()
        return final


if __name__ == "__main__":
    sys.exit(run_command(Args, main, algorithm="dqn", description=__doc__))
