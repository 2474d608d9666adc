"""A training run's bookkeeping as one context: start-up checks, the run directory and its lock, the session
(signals, owned environments and log), the run log, checkpoints, and the done marker of a run that ended cleanly.

    with training_run(args, "ppo", total_steps, memory) as run:
        with run.starting():  # a failure removes what the run created
            if run.complete:
                return {}
            checkpoint = run.resume_checkpoint()
            device = run.device()
            state = ...
            log = run.open_log(state, device, **config)
        for iteration in ...:
            ...
            run.checkpoint(state, due)
        return final  # the done marker is written on leaving the context
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import torch

from impoola.run.checkpoint import load_resume_checkpoint, save_checkpoint
from impoola.cli import user_errors
from impoola.envs.games import NUM_ACTIONS, level_range
from impoola.options import flat_options
from impoola.performance import configure_torch, select_device
from impoola.replay import available_memory
from impoola.run.rundir import RunDir, check_output_dir
from impoola.run.runlog import RunLog
from impoola.run.seeding import seed_everything
from impoola.run.session import TrainingSession
from impoola.run.startup import check_buildable, check_memory_need, check_resume, check_wandb
from impoola.run.training_state import TrainingState

E = TypeVar("E")


class MemoryNeed(NamedTuple):
    """The host memory a run's largest allocation needs, checked at start-up."""

    what: str
    required: int
    advice: str


class TrainingRun:
    """One run of a training script in its run directory: `training_run` makes it."""

    def __init__(self, args: Any, agent_kind: str, total_steps: int, run_dir: RunDir, session: TrainingSession):
        self.args, self.agent_kind, self.total_steps = args, agent_kind, total_steps
        self.dir, self.session = run_dir, session
        self.complete = False
        """the run already completed its total_timesteps: nothing to do (the lock is given up)"""
        self.log: RunLog | None = None

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """The start-up after the lock: bad input is one line, and any failure removes what the run created. It
        first tells whether the run is `complete` already."""
        with user_errors(), self.dir.starting():
            self.complete = self.dir.release_if_done(self.args.total_timesteps)
            yield

    def resume_checkpoint(self, prefer: Callable[[dict], bool] | None = None) -> dict[str, Any] | None:
        """With --resume the newest checkpoint (`prefer`: the newest it accepts); None starts afresh (also when a
        run was killed before its first checkpoint)."""
        if not self.args.run.resume:
            return None
        return load_resume_checkpoint(
            self.dir.path, flat_options(self.args), self.agent_kind, prefer=prefer,
            check=lambda payload: check_resume(payload, self.total_steps, self.args.total_timesteps))

    def device(self) -> torch.device:
        """The device, torch configured for it, and every RNG seeded."""
        run = self.args.run
        device = select_device(run.cuda)
        configure_torch(self.args.speed, device)
        seed_everything(run.seed, run.torch_deterministic)
        return device

    def open_log(self, state: TrainingState, device: torch.device, **config: Any) -> RunLog:
        """The run log from the state's step on; config.json holds the options, then `config`, then the device."""
        args, logging, env = self.args, self.args.logging, self.args.env
        config = {**flat_options(args), "run_name": self.dir.name, "model_name": args.model_name, **config,
                  "device": str(device)}
        self.log = self.session.own(RunLog(
            self.dir, config, self.total_steps, logging.wandb_mode, logging.wandb_project, logging.wandb_entity,
            (args.model_name, env.env_id, env.track, *logging.wandb_tags), start_step=state.global_step,
            progress=logging.progress_bar, keep_rows=state.metrics_rows))
        return self.log

    def training_envs(self, env_class: type[E]) -> E:
        """The vectorized environments of the track's training levels, `--num_envs` of them, closed with the run."""
        env, run = self.args.env, self.args.run
        start_level, num_levels = level_range(env.track, env.distribution_mode, "train")
        return self.session.own(env_class(env.env_id, self.args.num_envs, env.distribution_mode, start_level,
                                          num_levels, seed=run.seed, num_threads=env.procgen_threads))

    def save(self, state: TrainingState) -> None:
        """A checkpoint of `state`, after the metrics rows it refers to are on disk."""
        self.log.sync()
        state.metrics_rows = self.log.rows
        state.before_checkpoint()
        save_checkpoint(self.dir.checkpoints, state.global_step, state.state_dict(),
                        keep=self.args.run.keep_checkpoints)
        state.after_checkpoint()

    def checkpoint(self, state: TrainingState, due: bool, save: bool = True) -> None:
        """After a logged row: on a checkpoint signal a checkpoint (unless not `save`: the last one is written),
        then the run ends with exit 3; else a checkpoint when `due`."""
        self.session.checkpoint_or_exit(lambda: self.save(state) if save else None, state.global_step)
        if due:
            self.save(state)


@contextlib.contextmanager
def training_run(args: Any, agent_kind: str, total_steps: int, memory: MemoryNeed,
                 check_run_dir: Callable[[RunDir], None] | None = None) -> Iterator[TrainingRun]:
    """Check what start-up can (W&B, the network, memory, the output directory, `check_run_dir`), take the run
    directory, and hold the session; a clean exit marks the run done, any exit ends the session."""
    run = args.run
    with user_errors():
        check_wandb(args.logging)
        check_buildable(agent_kind, args.model, NUM_ACTIONS)
        check_memory_need(memory.what, memory.required, available_memory(), memory.advice)
        check_output_dir("output_dir", run.output_dir)
        run_dir = RunDir(run.output_dir, run.resolved_run_name(args.env.env_id, args.model_name))
        if check_run_dir is not None:
            check_run_dir(run_dir)
        run_dir.acquire(run.resume)
    with TrainingSession(run_dir, run.checkpoint_signals) as session:
        training = TrainingRun(args, agent_kind, total_steps, run_dir, session)
        yield training
        if not training.complete:
            run_dir.mark_done()
