"""Bad input table: each invalid invocation of the training script and the evaluation/analysis CLIs exits with
status 2 and one `error: ...` line naming the bad value, within seconds, and leaves existing run directories as
they were. In-process (the command-line parser included); one subprocess checks the real entry point."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import dqn_training
import ppo_training
from conftest import ROOT, tiny_dqn_args, tiny_ppo_args
from impoola import analyze, evaluate
from impoola.analysis.cli import run_main
from impoola.checkpoint import save_checkpoint
from impoola.cli import parse_cli
from impoola.models.agents import build_agent

# (case id, invocation, text the one-line message must contain). Invocations: ("ppo" / "dqn", Args overrides),
# ("ppo_cli" / "dqn_cli", argv of the training script), ("evaluate" / "analyze", argv; paths relative to the
# workspace).
CASES = [
    ("unknown game", ("ppo", {"env_id": "pong"}), "invalid env_id 'pong'; valid: bigfish, bossfight"),
    ("bad mode", ("ppo", {"distribution_mode": "medium"}), "invalid distribution_mode 'medium'; valid: easy, hard"),
    ("bad track", ("ppo", {"track": "zeroshot"}), "invalid track 'zeroshot'; valid: generalization"),
    ("width τ = 0", ("ppo", {"scale": 0.0}), "invalid scale 0.0"),
    ("width τ < 0", ("ppo", {"scale": -2.0}), "invalid scale -2.0"),
    ("minibatches not dividing the batch", ("ppo", {"num_minibatches": 3}), "invalid num_minibatches 3: it must divide"),
    ("negative steps", ("ppo", {"total_timesteps": -5}), "invalid total_timesteps -5"),
    ("fewer steps than one batch", ("ppo", {"total_timesteps": 10}), "invalid total_timesteps 10"),
    ("no envs", ("ppo", {"num_envs": 0}), "invalid num_envs 0"),
    ("negative learning rate", ("ppo", {"learning_rate": -1e-3}), "invalid learning_rate -0.001"),
    ("unknown pooling", ("ppo", {"pooling": "median"}), "invalid pooling 'median'"),
    ("dropout of 1", ("ppo", {"dropout": 1.0}), "invalid dropout 1.0"),
    ("pruning target above 1", ("ppo", {"pruning": True, "pruning_target": 1.5}), "invalid pruning_target 1.5"),
    ("two baselines", ("ppo", {"pruning": True, "redo": True}), "invalid combination --pruning --redo"),
    ("checkpoint every 0 iterations", ("ppo", {"checkpoint_every": 0}), "invalid checkpoint_every 0"),
    ("uncatchable checkpoint signal", ("ppo", {"checkpoint_signals": ("SIGKILL",)}),
     "invalid checkpoint_signals value 'SIGKILL'"),
    ("unknown checkpoint signal", ("ppo", {"checkpoint_signals": ("SIGFOO",)}), "invalid checkpoint_signals value 'SIGFOO'"),
    ("evaluation interval 0", ("ppo", {"eval_every_fraction": 0.0}), "invalid eval_every_fraction 0.0"),
    ("online W&B without credentials", ("ppo", {"wandb_mode": "online"}), "invalid wandb_mode 'online': no W&B credentials"),
    ("existing run without --resume", ("ppo", {"run_name": "existing"}), "already exists; valid: pass --resume"),
    ("unwritable output directory", ("ppo", {"output_dir": "blocker/runs"}), "cannot write run directory"),
    ("corrupt checkpoint on --resume", ("ppo", {"run_name": "corrupt", "resume": True}), "corrupt checkpoint"),
    ("checkpoint of another architecture on --resume", ("ppo", {"run_name": "existing", "resume": True,
                                                               "encoder": "impala"}),
     "encoder 'impoola' (checkpoint) vs 'impala' (now)"),
    ("unknown encoder on the command line", ("ppo_cli", ["--encoder", "resnet"]),
     "invalid choice 'resnet' for argument '--encoder'"),
    ("non-integer on the command line", ("ppo_cli", ["--num_envs", "many"]), "Error parsing --num-envs"),
    ("unknown option", ("ppo_cli", ["--learning_rat", "1e-3"]), "Unrecognized options: --learning_rat"),
    ("dqn: unknown game", ("dqn", {"env_id": "pong"}), "invalid env_id 'pong'"),
    ("dqn: buffer smaller than the batch", ("dqn", {"buffer_size": 4, "batch_size": 8}), "invalid buffer_size 4"),
    ("dqn: learning starts past the total steps", ("dqn", {"learning_starts": 64}), "invalid learning_starts 64"),
    ("dqn: negative steps", ("dqn", {"total_timesteps": -8}), "invalid total_timesteps -8"),
    ("dqn: width τ < 0", ("dqn", {"scale": -1.0}), "invalid scale -1.0"),
    ("dqn: replay memory larger than the RAM", ("dqn", {"buffer_size": 10**9}), "replay memory needs"),
    ("dqn: saved replay memory larger than the disk", ("dqn", {"buffer_size": 10**5, "save_buffer": True}),
     "invalid --save_buffer: the replay memory needs"),
    ("dqn: existing run without --resume", ("dqn", {"run_name": "existing"}), "already exists; valid: pass --resume"),
    ("dqn: resuming a PPO run", ("dqn", {"run_name": "existing", "resume": True}),
     "agent_kind 'ppo' (checkpoint) vs 'dqn' (now)"),
    ("dqn: unknown option", ("dqn_cli", ["--replay_mod", "textbook"]), "Unrecognized options: --replay_mod"),
    ("evaluate: missing checkpoint", ("evaluate", ["nowhere"]), "no checkpoint at"),
    ("evaluate: corrupt checkpoint", ("evaluate", ["garbage.pt"]), "corrupt checkpoint"),
    ("evaluate: checkpoint of another architecture", ("evaluate", ["other_architecture.pt"]),
     "checkpoint does not fit this impoola agent"),
    ("evaluate: unknown track", ("evaluate", ["runs/existing", "--tracks", "train,moon"]), "invalid track 'moon'"),
    ("evaluate: no episodes", ("evaluate", ["runs/existing", "--num_episodes", "0"]), "invalid num_episodes 0"),
    ("analyze: unknown analysis", ("analyze", ["runs/existing", "--what", "dormant,colour"]),
     "invalid analysis 'colour'"),
    ("analyze: missing checkpoint", ("analyze", ["nowhere"]), "no checkpoint at"),
    ("analyze: corrupt checkpoint", ("analyze", ["garbage.pt"]), "corrupt checkpoint"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """runs/existing (a run with a checkpoint), runs/corrupt (a garbage checkpoint), loose checkpoints, a file."""
    root = tmp_path_factory.mktemp("bad_input")
    args = tiny_ppo_args(root / "runs", run_name="existing", scale=1.0)
    agent = build_agent("ppo", args, 15)
    run_payload = {"agent": agent.state_dict(), "args": dataclasses.asdict(args), "agent_kind": "ppo", "global_step": 32}
    save_checkpoint(root / "runs" / "existing" / "checkpoints", 32, run_payload)
    (root / "runs" / "existing" / "metrics.jsonl").write_text('{"global_step": 0}\n{"global_step": 32}\n')
    (root / "runs" / "corrupt" / "checkpoints").mkdir(parents=True)
    (root / "runs" / "corrupt" / "checkpoints" / "ckpt_000000000032.pt").write_bytes(b"not a checkpoint")
    impala = build_agent("ppo", dataclasses.replace(args, encoder="impala"), 15)
    save_checkpoint(root, 1, {**run_payload, "agent": impala.state_dict()})
    (root / "ckpt_000000000001.pt").rename(root / "other_architecture.pt")
    (root / "garbage.pt").write_bytes(b"\x00" * 64)
    (root / "blocker").write_text("a file where a directory is expected\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def invoke(kind: str, value, root: Path) -> None:
    """Run one invocation in this process."""
    if kind in ("evaluate", "analyze"):
        module = evaluate if kind == "evaluate" else analyze
        paths = [str(root / v) if i == 0 else v for i, v in enumerate(value)]
        run_main(module.main, [*paths, "--no-cuda", "--out", str(root / "out")])
        return
    script, tiny_args = (ppo_training, tiny_ppo_args) if kind.startswith("ppo") else (dqn_training, tiny_dqn_args)
    if kind.endswith("_cli"):
        script.main(parse_cli(script.Args, ["--output_dir", str(root / "runs"), *value]))
    else:
        overrides = dict(value)
        script.main(tiny_args(root / overrides.pop("output_dir", "runs"), cuda=False, **overrides))


@pytest.mark.parametrize(("invocation", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(workspace, monkeypatch, capsys, invocation, message):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(workspace / "no_netrc"))
    monkeypatch.setattr("impoola.replay.persistence.shutil.disk_usage", lambda path: SimpleNamespace(free=2**30))  # 1 GiB
    before = snapshot(workspace)
    start = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        invoke(*invocation, workspace)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert elapsed < 10
    assert snapshot(workspace) == before
    assert not (workspace / "out").exists()


def test_the_table_covers_at_least_20_invocations_and_every_command():
    kinds = [case[1][0] for case in CASES]
    assert len(CASES) >= 20 and {"ppo", "ppo_cli", "dqn", "dqn_cli", "evaluate", "analyze"} <= set(kinds)


def test_entry_point_prints_one_line_for_a_parse_error(tmp_path):
    proc = subprocess.run([sys.executable, "ppo_training.py", "--encoder", "resnet", "--output_dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid choice 'resnet' for argument '--encoder'")
    assert proc.stderr.count("\n") == 1 and not list(tmp_path.iterdir())
