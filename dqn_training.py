"""DQN on Procgen with Impala / Impoola / Nature encoders: the paper's DQN agent, top to bottom.

    python dqn_training.py --env_id bigfish

Double DQN with 3-step returns and prioritized replay (frames stored once, impoola/replay.py). Defaults are
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
import dataclasses
import math
import time
from dataclasses import dataclass

from impoola.openmp import sleep_idle_threads

sleep_idle_threads()  # before torch loads OpenMP: idle torch threads sleep instead of spinning on Procgen's cores

import numpy as np  # noqa: E402
import torch  # noqa: E402

from impoola.analysis.dormant import dormant_batch, dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.checkpoint import (
    check_replay_disk, load_resume_checkpoint, load_state_strict, replay_matches, restore_replay, save_checkpoint,
)
from impoola.cli import (
    EXIT_PREEMPTED, EnvOptions, FiniteGuard, RunOptions, StopFlag, default_run_name, parse_cli, require_positive,
    rng_state, seed_everything, select_device, set_rng_state, user_errors,
)
from impoola.config import ModelOptions
from impoola.envs.games import NUM_ACTIONS, check_choice, level_range, normalized_score
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.evaluation import evaluate_scores
from impoola.models.agents import DQNAgent, build_agent
from impoola.performance import PerformanceOptions, compile_agent, configure_torch, prepare_agent, run_headline
from impoola.replay import ReplayMemory, available_memory, check_memory, check_mode, dqn_loss
from impoola.runlog import RunLog, is_done, prepare_run_dir

EXPLORATIONS = ("egreedy", "softmax")
LOSS_KEYS = ("losses/td_loss", "losses/q_values")


@dataclass
class Args(PerformanceOptions, ModelOptions, EnvOptions, RunOptions):
    exp_name: str = "dqn"
    """experiment name, part of the run name"""
    total_timesteps: int = 25_000_000
    """environment steps (run in whole vectorized steps of num_envs)"""
    learning_rate: float | None = None
    """Adam learning rate at τ=2 (default 1e-4), divided by τ/2 unless --no-scale_lr"""
    scale_lr: bool = True
    """rescale the learning rate by 2/τ (the release's rule)"""
    anneal_lr: bool = False
    """linearly anneal the learning rate to 0 over the run"""
    num_envs: int = 128
    buffer_size: int = 1_000_000
    """replay capacity in transitions (each frame stored once: ~12 KiB a transition, ~11.5 GiB at 1e6)"""
    batch_size: int = 512
    gamma: float = 0.99
    n_step: int = 3
    """steps of the n-step return"""
    target_network_frequency: int = 64_000
    """env steps between target network updates: every ceil(this / num_envs) vectorized steps"""
    tau: float = 1.0
    """target update rate (not the width scale): 1 copies the Q network, < 1 is Polyak averaging at each update"""
    start_e: float = 1.0
    """ε at the start"""
    end_e: float = 0.025
    """ε after the exploration phase"""
    exploration_fraction: float = 0.1
    """fraction of total_timesteps over which ε decays linearly from start_e to end_e"""
    learning_starts: int = 250_000
    """env steps (counted from the start or the resume point) before the first gradient step (which also waits
    for batch_size stored transitions)"""
    train_frequency: float = 1.0
    """gradient steps per vectorized env step: 2 does two each step, 0.5 one every other step"""
    max_grad_norm: float = 10.0
    prioritized: bool = True
    """prioritized replay (--no-prioritized: uniform sampling, unit weights)"""
    alpha: float = 0.5
    """priority exponent"""
    beta: float = 0.5
    """importance-weight exponent (constant)"""
    replay_mode: str = "release"
    """release (the published behaviour) or textbook: n-step storage, priorities, weights, loss and ε draws"""
    exploration: str = "egreedy"
    """egreedy (ε schedule) or softmax (sample every action from softmax(Q / softmax_temperature); no ε)"""
    softmax_temperature: float = 1.0
    log_every: int = 100
    """vectorized steps per logged row (training statistics are aggregated over them)"""
    checkpoint_every: int = 100
    """write a checkpoint every this many logged rows (also at every evaluation and at the end)"""
    save_buffer: bool = False
    """save the replay memory with each checkpoint (run_dir/replay, newest only) so --resume continues exactly;
    disk: its size (~11.4 GiB at 1e6), twice that while saving"""


def validate(args: Args) -> None:
    """Reject bad input with a one-line ValueError naming the value and the valid ones."""
    args.validate_env()
    args.validate_run()
    args.validate()
    args.validate_performance()
    check_mode(args.replay_mode)
    check_choice("exploration", args.exploration, EXPLORATIONS)
    for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "n_step", "target_network_frequency",
                 "train_frequency", "max_grad_norm", "softmax_temperature", "log_every"):
        require_positive(name, getattr(args, name))
    if args.learning_rate is not None:
        require_positive("learning_rate", args.learning_rate)
    if args.total_timesteps < args.num_envs:
        raise ValueError(f"invalid total_timesteps {args.total_timesteps}; valid: at least num_envs ({args.num_envs})")
    if args.buffer_size < args.batch_size:
        raise ValueError(f"invalid buffer_size {args.buffer_size}; valid: at least batch_size ({args.batch_size})")
    if not 0 <= args.learning_starts < args.total_timesteps:
        raise ValueError(f"invalid learning_starts {args.learning_starts}; "
                         f"valid: 0 <= learning_starts < total_timesteps ({args.total_timesteps})")
    for name in ("gamma", "start_e", "end_e"):
        if not 0 <= getattr(args, name) <= 1:
            raise ValueError(f"invalid {name} {getattr(args, name)!r}; valid: a number in [0, 1]")
    for name in ("exploration_fraction", "tau"):
        if not 0 < getattr(args, name) <= 1:
            raise ValueError(f"invalid {name} {getattr(args, name)!r}; valid: a number in (0, 1]")
    for name in ("alpha", "beta"):
        if getattr(args, name) < 0:
            raise ValueError(f"invalid {name} {getattr(args, name)!r}; valid: a non-negative number")


def check_replay_memory(args: Args) -> int:
    """Bytes the replay memory will allocate; a one-line ValueError if they exceed the available memory."""
    required = ReplayMemory.required_bytes(args.buffer_size, OBS_SHAPE, args.num_envs, args.n_step,
                                           args.replay_mode, args.prioritized)
    try:
        check_memory(required, available_memory())
    except MemoryError as exc:
        raise ValueError(str(exc)) from None
    return required


def base_learning_rate(args: Args) -> float:
    """The learning rate after the release's 2/τ rescaling."""
    lr = args.learning_rate if args.learning_rate is not None else 1e-4
    return lr * 2.0 / args.scale if args.scale_lr else lr


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """`start` moving linearly to `end` over `duration` steps, then `end`."""
    return end if t >= duration else start + (end - start) * t / duration


def gradient_steps(k: int, train_frequency: float) -> int:
    """Gradient steps due at the k-th learning vector step (k >= 1), so that k steps hold ⌊k·train_frequency⌋."""
    return int(k * train_frequency) - int((k - 1) * train_frequency)


def act(q_network: DQNAgent, obs: np.ndarray, epsilon: float, args: Args, device: torch.device) -> np.ndarray:
    """Actions of all envs: one H2D copy of `obs`, one D2H copy of actions (none when all are random)."""
    if args.exploration == "softmax":
        with torch.inference_mode():
            probs = torch.softmax(q_network(torch.from_numpy(obs).to(device)) / args.softmax_temperature, dim=-1)
            return torch.multinomial(probs, 1).squeeze(1).cpu().numpy()
    # release: one coin flip for the whole vectorized step; textbook: one per env.
    explore = np.full(len(obs), np.random.random() < epsilon) if args.replay_mode == "release" else (
        np.random.random(len(obs)) < epsilon)
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
    loss, _, priorities = dqn_loss(q_taken, target, batch.weights, args.replay_mode, args.alpha, rb.eps)
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
    with user_errors():
        validate(args)
        replay_bytes = check_replay_memory(args)
        run_name = args.run_name or default_run_name(args.env_id, args.exp_name, args.model_name, args.seed)
        if args.save_buffer:
            check_replay_disk(f"{args.output_dir}/{run_name}/replay", replay_bytes)
        run_dir = prepare_run_dir(args.output_dir, run_name, args.resume)
        if is_done(run_dir):
            print(f"run {run_name} is already complete ({run_dir / 'done'} exists); nothing to do")
            return {}
        # --resume continues from the newest checkpoint; a run killed before its first one starts afresh.
        checkpoint = load_resume_checkpoint(run_dir, dataclasses.asdict(args), "dqn", prefer=replay_matches(
            run_dir / "replay") if args.save_buffer else None) if args.resume else None
    device = select_device(args.cuda)
    configure_torch(args, device)
    seed_everything(args.seed, args.torch_deterministic)
    num_vector_steps = args.total_timesteps // args.num_envs
    total_steps = num_vector_steps * args.num_envs
    eval_interval = args.eval_every_fraction * total_steps
    exploration_steps = args.exploration_fraction * total_steps
    target_every = math.ceil(args.target_network_frequency / args.num_envs)
    # Greedy evaluation, during training and at the end: the train track, and the test track on generalization.
    eval_splits = ("train", "test") if args.track == "generalization" else ("train",)

    start_level, num_levels = level_range(args.track, args.distribution_mode, "train")
    envs = ProcgenVecEnv(args.env_id, args.num_envs, args.distribution_mode, start_level, num_levels,
                         seed=args.seed, num_threads=args.procgen_threads)

    q_network = prepare_agent(build_agent("dqn", args, NUM_ACTIONS), args, device)  # channels-last, bf16 autocast
    target_network = copy.deepcopy(q_network).requires_grad_(False)
    learning_rate = base_learning_rate(args)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=learning_rate, eps=1e-5)
    rb = ReplayMemory(args.buffer_size, args.num_envs, envs.single_observation_space.shape, args.n_step, args.gamma,
                      args.replay_mode, args.prioritized, args.alpha, args.beta, device=device, seed=args.seed)

    global_step, start_vector_step, next_eval_step, elapsed = 0, 0, eval_interval, 0.0
    obs_np, _ = envs.reset()
    if checkpoint is not None:
        with user_errors():
            load_state_strict(q_network, checkpoint["agent"], f"{args.model_name} Q network")
            load_state_strict(target_network, checkpoint["target_network"], f"{args.model_name} target network")
        optimizer.load_state_dict(checkpoint["optimizer"])
        envs.set_state(checkpoint["env_state"])
        obs_np = checkpoint["next_obs"]
        global_step, next_eval_step = checkpoint["global_step"], checkpoint["next_eval_step"]
        start_vector_step, elapsed = checkpoint["vector_step"], checkpoint["elapsed"]
        set_rng_state(checkpoint["rng"])
    restored = checkpoint is not None and args.save_buffer and restore_replay(rb, run_dir / "replay", checkpoint)
    learning_start_step = (0 if restored else global_step) + args.learning_starts  # a refilled memory waits again

    config = {**dataclasses.asdict(args), "run_name": run_name, "model_name": args.model_name,
              "num_vector_steps": num_vector_steps, "target_update_every_vector_steps": target_every,
              "base_learning_rate": learning_rate, "replay_bytes": replay_bytes, "device": str(device)}
    log = RunLog(run_dir, config, total_steps, args.wandb_mode, args.wandb_project, args.wandb_entity,
                 (args.model_name, args.env_id, args.track, *args.wandb_tags), start_step=global_step,
                 progress=args.progress_bar, keep_rows=checkpoint.get("metrics_rows") if checkpoint is not None else 0)

    def save(vector_step: int) -> None:
        # With --save_buffer the replay memory follows its checkpoint (replay_step): if a kill comes in between,
        # the previous checkpoint still matches the saved memory and --resume picks that one.
        log.sync()
        save_checkpoint(run_dir / "checkpoints", global_step, {
            "agent": q_network.state_dict(), "target_network": target_network.state_dict(),
            "optimizer": optimizer.state_dict(), "args": dataclasses.asdict(args), "agent_kind": "dqn",
            "num_actions": NUM_ACTIONS, "global_step": global_step, "vector_step": vector_step,
            "epsilon": linear_schedule(args.start_e, args.end_e, exploration_steps, global_step),
            "next_eval_step": next_eval_step, "elapsed": elapsed, "env_state": envs.get_state(), "next_obs": obs_np,
            "rng": rng_state(), "metrics_rows": log.rows, "learning_vector_steps": learning_vector_steps,
            "replay_step": rb.step if args.save_buffer else None,
        }, keep=args.keep_checkpoints)
        if args.save_buffer:
            rb.save(run_dir / "replay")

    def dormant() -> dict[str, float]:
        """Dormant neurons on the current observations of the first 32 envs."""
        return dormant_metrics(q_network, dormant_batch("dqn", torch.from_numpy(obs_np)).to(device))

    if checkpoint is None:
        log.log({**network_stats(q_network, device), **dormant()}, global_step)
    for network in (q_network, target_network):  # after network_stats: torchinfo's hooks must not be compiled in
        compile_agent(network, args, device)
    log.headline(run_headline(device, args, args.model_name, q_network, envs.num_threads))

    stop = StopFlag(args.checkpoint_signals)
    guard = FiniteGuard(q_network, LOSS_KEYS, run_dir / "checkpoints", (log.close, envs.close, stop.close))
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
                args.env_id, args.distribution_mode, mean_return)
            metrics["charts/episodic_length"] = float(np.mean(episode_lengths))
        evaluated = global_step >= next_eval_step and vector_step < num_vector_steps
        if evaluated:
            next_eval_step = global_step + eval_interval
            if args.num_eval_episodes > 0:
                video = run_dir / "videos" / f"step_{global_step:012d}.mp4" if args.capture_video else None
                metrics.update(evaluate_scores(q_network, args, device, args.num_eval_episodes, eval_splits,
                                               greedy=True, video_path=video))
            metrics.update(dormant())
        log.log(metrics, global_step)
        episode_returns, episode_lengths = [], []
        loss_sums.zero_()
        num_updates = 0
        interval_start, interval_start_step = time.time(), global_step

        if stop.signal is not None:
            save(vector_step)
            log.close()
            envs.close()
            stop.close()
            print(f"received signal {stop.name}: checkpoint written at step {global_step}; continue with --resume")
            raise SystemExit(EXIT_PREEMPTED)
        if vector_step % (args.log_every * args.checkpoint_every) == 0 or evaluated:
            save(vector_step)

    # Last checkpoint, then the final evaluation on more episodes, dormant neurons on the current observations, done
    # marker (a run killed in between redoes them from that checkpoint).
    save(num_vector_steps)
    final = {}
    if args.num_final_eval_episodes > 0:
        final.update(evaluate_scores(q_network, args, device, args.num_final_eval_episodes, eval_splits, greedy=True))
    final.update(dormant())
    log.log(final, global_step)
    log.mark_done()
    log.close()
    envs.close()
    stop.close()
    return final


if __name__ == "__main__":
    main(parse_cli(Args))
