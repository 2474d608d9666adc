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
from pathlib import Path
from typing import Any, ClassVar, Literal

from impoola.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP: how idle torch threads wait (impoola/openmp.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from impoola.analysis.dormant import dormant_batch, dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.cli import run_command
from impoola.dqn import LOSS_KEYS, dqn_loss
from impoola.envs.games import NUM_ACTIONS
from impoola.envs.options import EnvOptions
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.evaluation.episodes import evaluate_scores
from impoola.evaluation.options import EvalOptions
from impoola.models.agents import DQNAgent, build_agent
from impoola.models.encoders import ModelOptions
from impoola.options import Checked, Choice, Float, Int, Maybe, refuse_unused
from impoola.performance import PerformanceOptions, compile_agent, prepare_agent, run_headline
from impoola.replay import (
    RULES, ReplayMemory, check_replay_disk, has_snapshot, keep_only, restore_replay, rules_for, save_snapshot,
)
from impoola.run.checkpoint import load_state_strict
from impoola.run.options import RunOptions
from impoola.run.runlog import LoggingOptions
from impoola.run.session import checkpoint_due
from impoola.run.training_run import MemoryNeed, training_run
from impoola.run.training_state import EpisodeStats, TrainingState


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
    replay_mode: Choice(RULES) = "release"
    """release (the published behaviour) or textbook: n-step storage, priorities, weights, loss and ε draws"""
    exploration: Literal["egreedy", "softmax"] = "egreedy"
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

    @property
    def num_vector_steps(self) -> int:
        return self.total_timesteps // self.num_envs

    @property
    def total_steps(self) -> int:
        """The env steps the run takes: whole vectorized steps."""
        return self.num_vector_steps * self.num_envs


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


def epsilon_at(args: Args, global_step: int) -> float:
    """ε at `global_step`: start_e moving linearly to end_e over exploration_fraction of the run."""
    return linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_steps, global_step)


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


@dataclass(eq=False, kw_only=True)
class DQNState(TrainingState):
    """DQN's checkpointed state: the shared one, the target network, the last vector step, the learning vector steps
    (they time the gradient steps) and, with --save_buffer, the replay memory's snapshot beside the checkpoint."""

    agent_kind: ClassVar[str] = "dqn"
    agent_name: ClassVar[str] = "Q network"
    target_network: DQNAgent
    vector_step: int = 0
    learning_vector_steps: int = 0
    replay: ReplayMemory
    replay_dir: Path | None = None
    """where the replay memory is saved with each checkpoint (--save_buffer), else None"""
    replay_snapshot: str | None = None

    def before_checkpoint(self) -> None:
        # The replay snapshot is written first, then the checkpoint naming it, then older snapshots go: a kill
        # anywhere in between leaves the newest checkpoint with its snapshot.
        self.replay_snapshot = save_snapshot(self.replay, self.replay_dir) if self.replay_dir is not None else None

    def after_checkpoint(self) -> None:
        if self.replay_dir is not None:
            keep_only(self.replay_dir, self.replay_snapshot)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target_network": self.target_network.state_dict(),
                "vector_step": self.vector_step, "epsilon": epsilon_at(self.args, self.global_step),
                "learning_vector_steps": self.learning_vector_steps, "replay_snapshot": self.replay_snapshot}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        super().load_state_dict(payload)
        load_state_strict(self.target_network, payload["target_network"], f"{self.args.model_name} target network")
        self.vector_step = payload["vector_step"]
        self.learning_vector_steps = payload.get("learning_vector_steps", 0)


def main(args: Args) -> dict[str, float]:
    env, run, num_vector_steps = args.env, args.run, args.num_vector_steps
    eval_interval = args.eval.eval_every_fraction * args.total_steps
    target_every = math.ceil(args.target_network_frequency / args.num_envs)
    memory = MemoryNeed("buffer_size", replay_bytes(args), "a smaller --buffer_size or free memory")
    check_disk = (lambda run_dir: check_replay_disk(run_dir.replay, memory.required)) if args.save_buffer else None
    with training_run(args, "dqn", args.total_steps, memory, check_disk) as training:
        with training.starting():  # until the loop: a failure removes what the run created
            if training.complete:
                return {}
            replay_dir = training.dir.replay
            checkpoint = training.resume_checkpoint(prefer=has_snapshot(replay_dir) if args.save_buffer else None)
            device = training.device()

            envs = training.training_envs(ProcgenVecEnv)  # the training levels of the track

            q_network = prepare_agent(build_agent("dqn", args.model, NUM_ACTIONS), args.speed, device)  # channels-last
            target_network = copy.deepcopy(q_network).requires_grad_(False)
            learning_rate = base_learning_rate(args)
            optimizer = torch.optim.Adam(q_network.parameters(), lr=learning_rate, eps=1e-5)
            rb = ReplayMemory(args.buffer_size, args.num_envs, envs.single_observation_space.shape, args.n_step,
                              args.gamma, args.replay_mode, args.prioritized, args.alpha, args.beta, device=device,
                              seed=run.seed)
            state = DQNState(args=args, device=device, agent=q_network, optimizer=optimizer,
                             learning_rate=learning_rate, envs=envs, obs=envs.reset()[0], next_eval_step=eval_interval,
                             target_network=target_network, replay=rb,
                             replay_dir=replay_dir if args.save_buffer else None)
            if checkpoint is not None:
                state.load_state_dict(checkpoint)
            # With --save_buffer the memory comes back from the snapshot the checkpoint names (other leftovers are
            # deleted); a refilled memory waits for learning_starts again and counts its learning steps afresh.
            restored = args.save_buffer and restore_replay(rb, replay_dir, checkpoint)
            learning_start_step = (0 if restored else state.global_step) + args.learning_starts
            if not restored:
                state.learning_vector_steps = 0
            log = training.open_log(state, device, num_vector_steps=num_vector_steps,
                                    target_update_every_vector_steps=target_every, base_learning_rate=learning_rate,
                                    replay_bytes=memory.required)

        def evaluate(phase: str, num_episodes: int) -> dict[str, float]:
            """Greedy evaluation episodes in `phase`; with --capture_video an episode's video (the final one too)."""
            video = training.dir.video(state.global_step) if args.eval.capture_video else None
            return evaluate_scores(q_network, env, run.seed, args.eval.num_eval_envs or args.num_envs, device, "dqn",
                                   phase, num_episodes, video)

        def dormant() -> dict[str, float]:
            """Dormant neurons on the current observations of the first 32 envs."""
            return dormant_metrics(q_network, dormant_batch("dqn", torch.from_numpy(state.obs)).to(device))

        if checkpoint is None:
            log.log({**network_stats(q_network, device), **dormant()}, state.global_step)
        for network in (q_network, target_network):  # after network_stats: torchinfo's hooks must not be compiled in
            compile_agent(network, args.speed, device)
        log.headline(run_headline(device, args.speed, args.model_name, q_network, envs.num_threads,
                                  WAIT_POLICY.passive))
        guard = training.session.guard(q_network, LOSS_KEYS)
        start_time = time.time() - state.elapsed
        interval_start, interval_start_step = time.time(), state.global_step
        episodes, loss_sums, num_updates = EpisodeStats(env), torch.zeros(len(LOSS_KEYS), device=device), 0
        for vector_step in range(state.vector_step + 1, num_vector_steps + 1):
            state.vector_step = vector_step
            epsilon = epsilon_at(args, state.global_step)
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (vector_step - 1.0) / num_vector_steps) * learning_rate
            actions = act(q_network, state.obs, epsilon, args, device)
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            dones = terminated | truncated
            rb.add(state.obs, actions, rewards, dones, next_obs)
            state.obs = next_obs
            state.global_step += args.num_envs
            log.progress(state.global_step, **episodes.add(info, dones))

            if state.global_step > learning_start_step and len(rb) >= args.batch_size:
                state.learning_vector_steps += 1
                for _ in range(gradient_steps(state.learning_vector_steps, args.train_frequency)):
                    loss_sums += train_step(q_network, target_network, optimizer, rb, args)
                    num_updates += 1
                if vector_step % target_every == 0:
                    update_target(target_network, q_network, args.tau)

            if vector_step % args.log_every and vector_step < num_vector_steps:
                continue
            # Logging: one row per log_every vectorized steps, statistics aggregated over them.
            losses = guard.read(loss_sums / max(num_updates, 1), vector_step, state.global_step)
            now = time.time()
            state.elapsed = now - start_time
            metrics = {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/SPS": (state.global_step - interval_start_step) / (now - interval_start),
                "charts/elapsed_train_time": state.elapsed,
            }
            if args.exploration == "egreedy":
                metrics["charts/epsilon"] = epsilon
            if num_updates:
                metrics.update(zip(LOSS_KEYS, losses))
            metrics.update(episodes.metrics())
            evaluated = state.global_step >= state.next_eval_step and vector_step < num_vector_steps
            if evaluated:
                state.next_eval_step = state.global_step + eval_interval
                if args.eval.num_eval_episodes > 0:
                    metrics.update(evaluate("during", args.eval.num_eval_episodes))
                metrics.update(dormant())
            log.log(metrics, state.global_step)
            episodes, num_updates = EpisodeStats(env), 0
            loss_sums.zero_()
            interval_start, interval_start_step = time.time(), state.global_step
            training.checkpoint(state, checkpoint_due(vector_step, args.log_every * run.checkpoint_every, evaluated))

        # Last checkpoint, then the final evaluation on more episodes and dormant neurons on the current observations
        # (a run killed or signalled in between redoes them from that checkpoint).
        training.save(state)
        final = {}
        if args.eval.num_final_eval_episodes > 0:
            final.update(evaluate("final", args.eval.num_final_eval_episodes))
        final.update(dormant())
        training.checkpoint(state, due=False, save=False)  # a signal exits 3: the last checkpoint is written
        log.log(final, state.global_step)
        return final


if __name__ == "__main__":
    sys.exit(run_command(Args, main, algorithm="dqn", description=__doc__))
