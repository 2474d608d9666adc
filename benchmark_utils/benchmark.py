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

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from benchmark_utils import slurm
from benchmark_utils.launch import (
    LAUNCHER_FLAGS, RunResult, RunSpec, default_exp_name, flag_values, model_tag, run_local, summary_table,
    threads_per_worker, worker_slots,
)
from impoola.envs.games import ABLATION_GAMES, AGENT_CENTERED_GAMES, GAMES

GAME_GROUPS = {"all": GAMES, "ablation": ABLATION_GAMES, "agent_centered": AGENT_CENTERED_GAMES}
_SAFE_NAME = re.compile(r"^[\w.+=-]+$")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Launcher options; every --a_b is also accepted as --a-b."""
    parser = argparse.ArgumentParser(prog="python -m benchmark_utils.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)

    def add(group: argparse._ActionsContainer, name: str, **kwargs: object) -> None:
        spellings = [name] if "_" not in name else [name, name.replace("_", "-")]
        group.add_argument(*spellings, **kwargs)

    add(parser, "--env_ids", nargs="+", required=True,
        help=f"games, or a group: {', '.join(f'{k} ({len(v)})' for k, v in GAME_GROUPS.items())}")
    seeds = parser.add_mutually_exclusive_group()
    add(seeds, "--num_seeds", type=int, default=5, help="seeds 1..N (default 5)")
    add(seeds, "--seeds", type=int, nargs="+", help="explicit seeds")
    add(parser, "--command", nargs="+", required=True,
        help="training command(s), each one quoted string; several share one pool / job array")
    add(parser, "--tag", nargs="+", help="model tag of each command in run names (default: from its model flags)")
    add(parser, "--exp_name", help="experiment name of every command, appended as --exp_name")
    add(parser, "--output_dir", default="runs", help="parent of the run directories (default runs)")
    add(parser, "--log_dir", help="launcher logs, status files, SLURM files (default OUTPUT_DIR/logs)")
    add(parser, "--backend", choices=("local", "slurm"), default="local")
    add(parser, "--dry_run", action="store_true", help="print the exact commands and exit")

    local = parser.add_argument_group("local backend")
    add(local, "--workers", type=int, help="concurrent runs (default: one per GPU, 1 without GPUs)")
    add(local, "--gpus", nargs="*", help="GPU ids to share round-robin (default: CUDA_VISIBLE_DEVICES or all "
                                          "nvidia-smi GPUs); give none for CPU only")
    add(local, "--threads_per_run", type=int, help="OMP/MKL/Procgen threads per run (default: cores / workers)")

    slurm = parser.add_argument_group("slurm backend (submitit job array)")
    add(slurm, "--partition", help="SLURM partition (default: the cluster's default)")
    add(slurm, "--time", type=int, default=1440, help="time limit per job in minutes (default 1440)")
    add(slurm, "--gpus_per_run", type=int, default=1, help="GPUs per run (default 1; 0 for none)")
    add(slurm, "--cpus_per_run", type=int, default=8, help="CPUs per run, also its thread count (default 8)")
    add(slurm, "--mem_gb", type=float, help="memory per run in GB (default: the cluster's default)")
    add(slurm, "--array_parallelism", type=int, default=256, help="most array tasks running at once (default 256)")
    add(slurm, "--account", help="SLURM account")
    add(slurm, "--qos", help="SLURM quality of service")
    add(slurm, "--signal_delay_s", type=int, default=120,
        help="USR2 (checkpoint and requeue) this many seconds before the time limit (default 120)")
    add(slurm, "--max_requeues", type=int, default=10,
        help="requeues after time limits per run (preemptions do not count; default 10)")
    add(slurm, "--no_wait", action="store_true", help="submit and exit without waiting for the jobs")
    return parser.parse_args(argv)


def resolve_games(env_ids: Sequence[str]) -> list[str]:
    """Games in the given order, groups expanded, duplicates dropped."""
    games: list[str] = []
    for env_id in env_ids:
        if env_id not in GAMES and env_id not in GAME_GROUPS:
            raise ValueError(f"invalid env_id {env_id!r}; valid: {', '.join((*GAMES, *GAME_GROUPS))}")
        games += [g for g in GAME_GROUPS.get(env_id, (env_id,)) if g not in games]
    return games


def build_specs(args: argparse.Namespace, procgen_threads: int) -> list[RunSpec]:
    """All runs, seed by seed, then command by command, then game by game; ValueError on bad input."""
    games = resolve_games(args.env_ids)
    seeds = args.seeds or list(range(1, args.num_seeds + 1))
    if min(seeds) < 0:
        raise ValueError(f"invalid seeds {seeds}; valid: non-negative integers")
    if args.tag and len(args.tag) != len(args.command):
        raise ValueError(f"{len(args.tag)} tags for {len(args.command)} commands; give one tag per command")
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
                name = f"{game}__{exp_name}__{tag}__s{seed}"
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


def slurm_parameters(args: argparse.Namespace) -> dict[str, object]:
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
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    try:
        for name in ("workers", "threads_per_run", "cpus_per_run", "num_seeds", "time", "array_parallelism", "mem_gb"):
            if getattr(args, name) is not None and getattr(args, name) <= 0:
                raise ValueError(f"invalid --{name} {getattr(args, name)}; valid: a positive number")
        for name in ("gpus_per_run", "signal_delay_s", "max_requeues"):
            if getattr(args, name) < 0:
                raise ValueError(f"invalid --{name} {getattr(args, name)}; valid: a non-negative integer")
        if args.backend == "local":
            gpus = detect_gpus() if args.gpus is None else args.gpus
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
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
            print("error: --backend slurm needs SLURM, but sbatch is not on PATH", file=sys.stderr)
            return 2
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
