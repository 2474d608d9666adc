"""Stand-in training script for the launcher tests: the training CLI conventions without torch or Procgen.

It writes OUTPUT_DIR/RUN_NAME/{config.json, metrics.jsonl, ckpt.json, history.txt, done}, refuses an
existing run dir without --resume (exit 2), continues from ckpt.json with --resume, checkpoints and exits 0
at the next step after SIGTERM/SIGUSR2 (recording the signal in history.txt), and fails (exit 1) at step
`--fail_at` for `--fail_seed` on a fresh start; with `--fail_always` it fails on resumed attempts too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    """The flags the launcher appends plus knobs for the tests."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--env_id", "--env-id", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--run_name", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--exp_name", default="fake")
    parser.add_argument("--procgen_threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step_time", type=float, default=0.05)
    parser.add_argument("--fail_seed", type=int, default=None)
    parser.add_argument("--fail_at", type=int, default=1)
    parser.add_argument("--fail_always", action="store_true")
    return parser.parse_args()


def main() -> int:
    """Run `--steps` steps of `--step_time` seconds each; see the module docstring."""
    args = parse_args()
    run_dir = Path(args.output_dir) / args.run_name
    if run_dir.exists() and not args.resume:
        print(f"error: run dir {run_dir} exists; pass --resume to continue it", file=sys.stderr)
        return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    history = (run_dir / "history.txt").open("a", buffering=1)
    ckpt = run_dir / "ckpt.json"
    step = json.loads(ckpt.read_text())["step"] if args.resume and ckpt.exists() else 0
    history.write(f"start step={step} resume={int(args.resume)}\n")
    env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                          "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID")}
    (run_dir / "config.json").write_text(json.dumps({**vars(args), "environ": env}))

    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        history.write(f"signal {signal.Signals(signum).name}\n")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR2, on_signal)

    with (run_dir / "metrics.jsonl").open("a", buffering=1) as metrics:
        while step < args.steps:
            if received:
                ckpt.write_text(json.dumps({"step": step}))
                history.write(f"checkpoint step={step}\n")
                return 0
            if args.seed == args.fail_seed and step == args.fail_at and (args.fail_always or not args.resume):
                ckpt.write_text(json.dumps({"step": step}))
                raise RuntimeError(f"planted failure at step {step}")
            time.sleep(args.step_time)
            step += 1
            metrics.write(json.dumps({"global_step": step}) + "\n")
    (run_dir / "done").touch()
    history.write("done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
