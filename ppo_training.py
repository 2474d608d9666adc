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
from typing import Any, ClassVar, Literal

from impoola.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP: how idle torch threads wait (impoola/openmp.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from impoola.analysis.dormant import dormant_batch, dormant_metrics
from impoola.analysis.stats import network_stats
from impoola.baselines.options import BaselineOptions, check_baseline_model
from impoola.baselines.pruning import GradualPruner
from impoola.baselines.redo import ReDo
from impoola.cli import run_command
from impoola.envs.games import NUM_ACTIONS
from impoola.envs.options import EnvOptions
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.envs.wrappers import RewardNormalizer
from impoola.evaluation.episodes import evaluate_scores
from impoola.evaluation.options import EvalOptions
from impoola.models.agents import PPOAgent, build_agent
from impoola.models.encoders import ModelOptions
from impoola.optim import build_adam
from impoola.options import Checked, Float, Int, Maybe, refuse_unused
from impoola.performance import (
    PerformanceOptions, StepTransfer, compile_agent, compiled, prepare_agent, run_headline,
)
from impoola.ppo import LOSS_KEYS, PPOLoss, RolloutBuffer, compute_gae, explained_variance, ppo_loss
from impoola.run.options import RunOptions
from impoola.run.runlog import LoggingOptions
from impoola.run.session import checkpoint_due
from impoola.run.training_run import MemoryNeed, training_run
from impoola.run.training_state import EpisodeStats, TrainingState


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

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        """Whole iterations of one batch each."""
        return self.total_timesteps // self.batch_size


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
    batch_size, minibatch_size = len(batch["obs"]), args.minibatch_size
    loss_sums = torch.zeros(len(LOSS_KEYS), device=batch["obs"].device)
    num_updates = 0
    for _ in range(args.update_epochs):
        permutation = torch.randperm(batch_size, device=batch["obs"].device)
        for start in range(0, batch_size, minibatch_size):
            mb = permutation[start:start + minibatch_size]
            newlogits, newvalue = agent(batch["obs"][mb])
            out = loss_fn(newlogits, newvalue, batch["actions"][mb], batch["logprobs"][mb], batch["values"][mb],
                          batch["returns"][mb], batch["advantages"][mb], clip_coef=args.clip_coef,
                          ent_coef=args.ent_coef, vf_coef=args.vf_coef, norm_adv=args.norm_adv,
                          clip_vloss=args.clip_vloss)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
            loss_sums += out.parts()
            num_updates += 1
        if args.target_kl is not None and out.approx_kl.item() > args.target_kl:
            break
    return loss_sums / num_updates


@dataclass(eq=False, kw_only=True)
class PPOState(TrainingState):
    """PPO's checkpointed state: the shared one, the reward normaliser, the done flags of `obs`, the last finished
    iteration, the recent-episode windows and, after the last iteration, its rollout's dormant-neuron batch."""

    agent_kind: ClassVar[str] = "ppo"
    reward_normalizer: RewardNormalizer
    done: np.ndarray
    iteration: int = 0
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))
    recent_lengths: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))
    dormant_obs: torch.Tensor | None = None
    """the dormant-neuron batch of the last rollout"""

    def recent_episodes(self, episodes: EpisodeStats) -> dict[str, float]:
        """The mean return and length of the last RECENT_EPISODES episodes, once `episodes` adds to them."""
        if not episodes.returns:
            return {}
        self.recent_returns.extend(episodes.returns)
        self.recent_lengths.extend(episodes.lengths)
        return {"charts/episodic_return_last100": float(np.mean(self.recent_returns)),
                "charts/episodic_length_last100": float(np.mean(self.recent_lengths))}

    def state_dict(self) -> dict[str, Any]:
        final = self.iteration == self.args.num_iterations
        return {**super().state_dict(), "iteration": self.iteration,
                "reward_normalizer": self.reward_normalizer.state_dict(), "next_done": self.done,
                "recent_returns": list(self.recent_returns), "recent_lengths": list(self.recent_lengths),
                "last_obs": self.dormant_obs if final else None}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        super().load_state_dict(payload)
        self.reward_normalizer.load_state_dict(payload["reward_normalizer"])
        self.done, self.iteration = payload["next_done"], payload["iteration"]
        self.recent_returns.extend(payload.get("recent_returns", ()))
        self.recent_lengths.extend(payload.get("recent_lengths", ()))
        if payload.get("last_obs") is not None:  # resumed after the last iteration: its dormant batch
            self.dormant_obs = payload["last_obs"].to(self.device)


def main(args: Args) -> dict[str, float]:
    env, run, baselines = args.env, args.run, args.baselines
    batch_size, num_iterations = args.batch_size, args.num_iterations
    eval_interval = args.eval.eval_every_fraction * num_iterations * batch_size
    memory = MemoryNeed("num_envs x num_steps", rollout_bytes(args), "fewer --num_envs or --num_steps")
    with training_run(args, "ppo", num_iterations * batch_size, memory) as training:
        with training.starting():  # until the loop: a failure removes what the run created
            if training.complete:
                return {}
            checkpoint = training.resume_checkpoint()
            device = training.device()

            # Environments: training levels of the track; rewards normalised for training only.
            envs = training.training_envs(ProcgenVecEnv)
            reward_normalizer = RewardNormalizer(args.num_envs, reward_discount(args), clip=args.reward_clip)

            agent = prepare_agent(build_agent("ppo", args.model, NUM_ACTIONS), args.speed, device)  # channels-last
            learning_rate = base_learning_rate(args)
            optimizer = build_adam(agent.parameters(), learning_rate, ADAM_EPS, args.adam_eps_form)
            # Baselines: pruning masks are part of the agent's state, so they are built before a checkpoint loads.
            pruner = GradualPruner(agent, baselines.pruning_mode, num_iterations, baselines.pruning_target,
                                   baselines.pruning_start, baselines.pruning_end) if baselines.pruning else None
            redo = ReDo(agent, optimizer, baselines.redo_tau, baselines.redo_every,
                        baselines.redo_mode) if baselines.redo else None
            storage = RolloutBuffer(args.num_steps, args.num_envs, envs.single_observation_space.shape, device)
            state = PPOState(args=args, device=device, agent=agent, optimizer=optimizer, learning_rate=learning_rate,
                             envs=envs, obs=envs.reset()[0], next_eval_step=eval_interval,
                             reward_normalizer=reward_normalizer, done=np.zeros(args.num_envs, dtype=bool))
            if checkpoint is not None:
                state.load_state_dict(checkpoint)
            log = training.open_log(state, device, batch_size=batch_size, minibatch_size=args.minibatch_size,
                                    num_iterations=num_iterations, base_learning_rate=learning_rate)

        def evaluate(phase: str, num_episodes: int) -> dict[str, float]:
            """The evaluations `impoola.evaluation.registry` lists for PPO in `phase`; optionally an episode's video."""
            video = training.dir.video(state.global_step) if args.eval.capture_video else None
            return evaluate_scores(agent, env, run.seed, args.eval.num_eval_envs or args.num_envs, device, "ppo", phase,
                                   num_episodes, video)

        if checkpoint is None:
            log.log({**network_stats(agent, device),
                     **dormant_metrics(agent, torch.from_numpy(state.obs).to(device))}, state.global_step)
        compile_agent(agent, args.speed, device)  # after network_stats: torchinfo's hooks must not be compiled in
        log.headline(run_headline(device, args.speed, args.model_name, agent, envs.num_threads,
                                  WAIT_POLICY.passive))
        loss_fn = compiled(ppo_loss, args.speed, device)
        to_device = StepTransfer(args.num_envs, envs.single_observation_space.shape, device)
        guard = training.session.guard(agent, LOSS_KEYS)
        start_time = time.time() - state.elapsed
        for iteration in range(state.iteration + 1, num_iterations + 1):
            state.iteration, iteration_start = iteration, time.time()
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * learning_rate

            # Rollout: uint8 observations go to the device once; actions come back once per step.
            episodes = EpisodeStats(env)
            next_obs = torch.from_numpy(state.obs).to(device)
            next_done = torch.from_numpy(state.done).to(device, torch.float32)
            for step in range(args.num_steps):
                state.global_step += args.num_envs
                storage.obs[step] = next_obs
                storage.dones[step] = next_done
                with torch.inference_mode():
                    action, logprob, _, value = agent.get_action_and_value(next_obs)
                storage.values[step] = value.flatten()
                storage.actions[step] = action
                storage.logprobs[step] = logprob
                state.obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
                state.done = terminated | truncated
                if args.normalize_reward:
                    reward = reward_normalizer(reward, state.done)
                next_obs, storage.rewards[step], next_done = to_device(state.obs, reward, state.done)  # one copy
                log.progress(state.global_step, **episodes.add(info, state.done))

            # Generalized advantage estimation, bootstrapped from the value of the next observation.
            with torch.inference_mode():
                next_value = agent.get_value(next_obs).flatten()
            advantages, returns = compute_gae(storage.rewards, storage.values, storage.dones, next_value, next_done,
                                              args.gamma, args.gae_lambda)
            batch = storage.flat(advantages.clone(), returns.clone())

            # PPO update: epochs of shuffled minibatches, losses summed on the device.
            mean_losses = update(agent, optimizer, loss_fn, batch, args)
            state.dormant_obs = dormant_batch("ppo", batch["obs"])
            redo_metrics = redo.maybe_reset(iteration, state.dormant_obs) if redo is not None else {}

            # Logging: one row per iteration, episode statistics aggregated over the iteration.
            state.elapsed = time.time() - start_time
            losses = guard.read(mean_losses, iteration, state.global_step)
            metrics = {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/SPS": batch_size / (time.time() - iteration_start),
                "charts/elapsed_train_time": state.elapsed,
                **dict(zip(LOSS_KEYS, losses)),
                "losses/explained_variance": explained_variance(batch["values"], batch["returns"]),
                **redo_metrics,
                **episodes.metrics(),
            }
            metrics.update(state.recent_episodes(episodes))
            evaluated = state.global_step >= state.next_eval_step and iteration < num_iterations
            if evaluated:
                state.next_eval_step = state.global_step + eval_interval
                if args.eval.num_eval_episodes > 0:
                    metrics.update(evaluate("during", args.eval.num_eval_episodes))
                metrics.update(dormant_metrics(agent, state.dormant_obs))
            if pruner is not None:  # the release prunes at the end of the iteration, after its evaluation
                metrics["charts/sparsity"] = pruner.step(iteration)
            log.log(metrics, state.global_step)
            training.checkpoint(state, checkpoint_due(iteration, run.checkpoint_every, evaluated))

        # Last checkpoint, then the final evaluation on more episodes and dormant neurons on the last rollout (a run
        # killed or signalled in between redoes them from that checkpoint, identically).
        training.save(state)
        final = {}
        if args.eval.num_final_eval_episodes > 0:
            final.update(evaluate("final", args.eval.num_final_eval_episodes))
        final.update(dormant_metrics(agent, state.dormant_obs))
        training.checkpoint(state, due=False, save=False)  # a signal exits 3: the last checkpoint is written
        log.log(final, state.global_step)
        return final


if __name__ == "__main__":
    sys.exit(run_command(Args, main, algorithm="ppo", description=__doc__))
