"""Run a training command for every (game, seed) pair on this machine's GPUs/CPUs or on a SLURM cluster.

    python -m benchmark_utils.benchmark --env_ids bigfish coinrun --num_seeds 5 \\
        --command "python ppo_training.py --scale 2" --workers 2
    python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command "python ppo_training.py" \\
        --backend slurm --partition gpu --time 1440

Each run gets `--env_id G --seed S --run_name NAME --output_dir DIR` (and `--procgen_threads T` unless the
command sets it) appended, NAME = {G}__{EXP}__{TAG}__s{S}; EXP = --exp_name (also appended), else the
command's --exp_name, else its script's stem without `_training`; TAG = --tag, else the model name from the
command's model flags. A run whose DIR/NAME holds `done` is skipped, one whose DIR/NAME exists gets --resume.
Exit status: 0 when every run finished, 1 when one did not, 2 on bad input.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from benchmark_utils import slurm
from benchmark_utils.launch import (
    LAUNCHER_FLAGS, RunResult, RunSpec, default_exp_name, flag_values, model_tag, run_local, summary_table,
    threads_per_worker, worker_slots,
)
from impoola.cli import run_command
from impoola.envs.games import ABLATION_GAMES, AGENT_CENTERED_GAMES, GAMES
from impoola.options import Checked, Float, Int, Maybe
from impoola.run.rundir import run_name

GAME_GROUPS = {"all": GAMES, "ablation": ABLATION_GAMES, "agent_centered": AGENT_CENTERED_GAMES}
_SAFE_NAME = re.compile(r"^[\w.+=-]+$")


@dataclass(frozen=True)
class BenchmarkOptions(Checked):
    """Launcher options."""

    env_ids: tuple[str, ...]
    """games, or a group: all (16), ablation (5), agent_centered (8)"""
    command: tuple[str, ...]
    """training command(s), each one quoted string; several share one pool / job array"""
    num_seeds: Maybe(Int(1, 10**4)) = None
    """seeds 1..N (default 5)"""
    seeds: tuple[Int(0, 2**32, high_open=True), ...] | None = None
    """explicit seeds (instead of --num_seeds)"""
    tag: tuple[str, ...] | None = None
    """model tag of each command in run names (default: from its model flags)"""
    exp_name: str | None = None
    """experiment name of every command, appended as --exp_name"""
    output_dir: str = "runs"
    """parent of the run directories"""
    log_dir: str | None = None
    """launcher logs, status files, SLURM files (default OUTPUT_DIR/logs)"""
    backend: Literal["local", "slurm"] = "local"
    """where the runs go: this machine's GPUs/CPUs or a SLURM cluster"""
    dry_run: bool = False
    """print the exact commands and exit"""
    workers: Maybe(Int(1, 4096)) = None
    """local: concurrent runs (default: one per GPU, 1 without GPUs)"""
    gpus: tuple[str, ...] | None = None
    """local: GPU ids to share round-robin (default: CUDA_VISIBLE_DEVICES or all nvidia-smi GPUs); none: CPU only"""
    threads_per_run: Maybe(Int(1, 1024)) = None
    """local: OMP/MKL/Procgen threads per run (default: cores / workers)"""
    partition: str | None = None
    """slurm: partition (default: the cluster's default)"""
    time: Int(1, 10**6) = 1440
    """slurm: time limit per job in minutes"""
    gpus_per_run: Int(0, 64) = 1
    """slurm: GPUs per run (0 for none)"""
    cpus_per_run: Int(1, 1024) = 8
    """slurm: CPUs per run, also its thread count"""
    mem_gb: Maybe(Float(0, 10**5, low_open=True)) = None
    """slurm: memory per run in GB (default: the cluster's default)"""
    array_parallelism: Int(1, 10**5) = 256
    """slurm: most array tasks running at once"""
    account: str | None = None
    """slurm: account"""
    qos: str | None = None
    """slurm: quality of service"""
    signal_delay_s: Int(0, 10**5) = 120
    """slurm: USR2 (checkpoint and requeue) this many seconds before the time limit"""
    max_requeues: Int(0, 10**4) = 10
    """slurm: requeues after time limits per run (preemptions do not count)"""
    no_wait: bool = False
    """slurm: submit and exit without waiting for the jobs"""

    def check(self) -> None:
        resolve_games(self.env_ids)
        if self.num_seeds is not None and self.seeds is not None:
            raise ValueError("invalid --num_seeds with --seeds; valid: one of them")
        if self.seeds == ():
            raise ValueError("invalid seeds: an empty list; valid: at least one seed, or leave --seeds out (1..5)")
        repeated = [seed for seed in dict.fromkeys(self.seeds or ()) if self.seeds.count(seed) > 1]
        if repeated:
            raise ValueError(f"invalid seeds {' '.join(map(str, self.seeds))}: seed {repeated[0]} is given twice; "
                             "valid: distinct seeds")
        if self.tag is not None and len(self.tag) != len(self.command):
            raise ValueError(f"invalid tag: {len(self.tag)} tags for {len(self.command)} commands; "
                             "valid: one tag per command")


def resolve_games(env_ids: Sequence[str]) -> list[str]:
    """Games in the given order, groups expanded, duplicates dropped."""
    games: list[str] = []
    for env_id in env_ids:
        if env_id not in GAMES and env_id not in GAME_GROUPS:
            raise ValueError(f"invalid env_id {env_id!r}; valid: {', '.join((*GAMES, *GAME_GROUPS))}")
        games += [g for g in GAME_GROUPS.get(env_id, (env_id,)) if g not in games]
    return games


def build_specs(args: BenchmarkOptions, procgen_threads: int) -> list[RunSpec]:
    """All runs, seed by seed, then command by command, then game by game; ValueError on bad input."""
    games = resolve_games(args.env_ids)
    seeds = list(args.seeds or range(1, (args.num_seeds or 5) + 1))
    log_dir = args.log_dir or os.path.join(args.output_dir, "logs")
    commands = []
    for index, command in enumerate(args.command):
        argv = shlex.split(command)
        if not argv:
            raise ValueError("invalid empty --command")
        flags = flag_values(argv)
        clash = [f"--{flag}" for flag in LAUNCHER_FLAGS if flag in flags]
        if clash:
            raise ValueError(f"command {command!r} sets {', '.join(clash)}; the launcher sets them for every run")
        if args.exp_name and flags.get("exp_name", [args.exp_name]) != [args.exp_name]:
            raise ValueError(f"command {command!r} sets --exp_name, which differs from --exp_name {args.exp_name}")
        exp_name = args.exp_name or default_exp_name(argv)
        tag = args.tag[index] if args.tag else model_tag(argv)
        extra = ["--exp_name", exp_name] if args.exp_name and "exp_name" not in flags else []
        extra += [] if "procgen_threads" in flags else ["--procgen_threads", str(procgen_threads)]
        for part in (exp_name, tag):
            if not _SAFE_NAME.match(part):
                raise ValueError(f"invalid name part {part!r}; valid: letters, digits and . _ + = -")
        commands.append((argv + extra, exp_name, tag))
    specs, names = [], set()
    for seed in seeds:
        for argv, exp_name, tag in commands:
            for game in games:
                name = run_name(game, exp_name, tag, seed)
                if name in names:
                    raise ValueError(f"two commands give the run name {name}; give them different --tag values")
                names.add(name)
                launcher = ["--env_id", game, "--seed", str(seed), "--run_name", name, "--output_dir", args.output_dir]
                specs.append(RunSpec(game, seed, name, tuple(argv + launcher), args.output_dir, log_dir, os.getcwd()))
    return specs


def detect_gpus() -> list[str]:
    """CUDA_VISIBLE_DEVICES if set, else the GPUs nvidia-smi lists, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() not in ("", "-1")]
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def slurm_parameters(args: BenchmarkOptions) -> dict[str, object]:
    """submitit AutoExecutor parameters of the SLURM options (unset ones left to the cluster)."""
    parameters: dict[str, object] = {
        "name": "impoola", "timeout_min": args.time, "cpus_per_task": args.cpus_per_run,
        "slurm_array_parallelism": args.array_parallelism, "slurm_signal_delay_s": args.signal_delay_s,
    }
    optional = {"gpus_per_node": args.gpus_per_run or None, "mem_gb": args.mem_gb, "slurm_partition": args.partition,
                "slurm_account": args.account, "slurm_qos": args.qos}
    return {**parameters, **{key: value for key, value in optional.items() if value is not None}}


def main(argv: Sequence[str] | None = None) -> int:
    """Launch, wait, print the summary; the exit status (0 all finished, 1 some did not, 2 bad input)."""
    return run_command(BenchmarkOptions, launch, argv, description=__doc__)


def launch(args: BenchmarkOptions) -> int:
    """The runs of the parsed options: 0 when all finished, 1 when one did not (bad input: a ValueError)."""
    sys.stdout.reconfigure(line_buffering=True)
    if args.backend == "local":
        gpus = detect_gpus() if args.gpus is None else list(args.gpus)
        slots = worker_slots(gpus, args.workers)
        workers = len(slots)
        threads = args.threads_per_run or threads_per_worker(len(os.sched_getaffinity(0)), workers)
        setup = (f"local: {workers} workers on " + (f"CUDA_VISIBLE_DEVICES {' '.join(slots)}" if gpus else
                 "CPU (CUDA_VISIBLE_DEVICES='')") + f"; each run: OMP_NUM_THREADS=MKL_NUM_THREADS={threads}")
    else:
        threads = args.cpus_per_run
        setup = (f"slurm: one array task per run, {slurm_parameters(args)}, max_requeues {args.max_requeues}; "
                 "each run: OMP_NUM_THREADS=MKL_NUM_THREADS=$SLURM_CPUS_PER_TASK")
    specs = build_specs(args, threads)
    todo = [spec for spec in specs if not spec.finished]
    if args.dry_run:
        print(f"# {setup}")
        print(f"# {len(specs)} runs, {len(specs) - len(todo)} finished (skipped); logs: {specs[0].log_path.parent}")
        for spec in specs:
            print(f"# skip {spec.name}: finished" if spec.finished else shlex.join(spec.command()))
        return 0

    print(f"{len(specs)} runs, {len(specs) - len(todo)} already finished")
    if not todo:
        results = []
    elif args.backend == "local":
        print(setup)
        results = run_local(todo, slots, threads)
    else:
        if shutil.which("sbatch") is None:
            raise ValueError("invalid --backend slurm: sbatch is not on PATH; valid: local, or slurm on a SLURM host")
        log_dir = todo[0].log_path.parent
        jobs = slurm.submit(todo, log_dir / "slurm", slurm_parameters(args), args.max_requeues,
                            max(5, args.signal_delay_s - 15))
        for spec, job in zip(todo, jobs):
            print(f"submitted {spec.name} as job {job.job_id}")
        results = ([RunResult.without_attempt(spec, "submitted") for spec in todo] if args.no_wait
                   else slurm.wait(todo, jobs))
    by_name = {result.name: result for result in results}
    table = [by_name.get(spec.name) or RunResult.without_attempt(spec, "skipped") for spec in specs]
    print(summary_table(table))
    finished = ("done", "skipped", "submitted") if args.no_wait else ("done", "skipped")
    return 0 if all(result.state in finished for result in table) else 1


if __name__ == "__main__":
    sys.exit(main())
