"""Bad and edge input across every entry point, table-driven and in-process (the command-line parser included).

Each bad case must answer with exit status 2 and exactly one output line `error: ...` naming the value (no
traceback), and leave the workspace as it was: nothing new on disk, the existing run byte-identical. Legitimate
edge inputs are asserted to work. The workspace holds a run written by the previous version (tests/data/v1_runs),
a corrupt checkpoint, a file where directories are expected, a CSV without the tidy columns.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import analyze
import dqn_training
import evaluate
import ppo_training
from benchmark_utils import benchmark, gpu_check, op_profile, procgen_parity, replay_throughput, throughput, validate
from impoola.cli import parse_cli, run_command
from plot_utils import figures, gallery
from support.paths import DATA, ROOT
from support.runs import tiny_dqn_args, tiny_ppo_args

V1 = DATA / "v1_runs"
# The options of the run in v1_runs/v1_ppo: resuming it with them passes every check but the one a case breaks.
V1_PPO = ["--env_id", "bigfish", "--num_envs", "2", "--num_steps", "16", "--total_timesteps", "64",
          "--num_minibatches", "2", "--update_epochs", "1", "--num_eval_episodes", "0", "--num_final_eval_episodes",
          "0", "--scale", "0.5", "--procgen_threads", "1", "--wandb_mode", "disabled", "--no-progress_bar",
          "--keep_checkpoints", "1", "--learning_rate", "1e-3", "--run_name", "existing", "--resume"]

ENTRY_POINTS = {
    "ppo": lambda argv: run_command(ppo_training.Args, ppo_training.main, argv, algorithm="ppo"),
    "dqn": lambda argv: run_command(dqn_training.Args, dqn_training.main, argv, algorithm="dqn"),
    "evaluate": evaluate.main,
    "analyze": analyze.main,
    "benchmark": benchmark.main,
    "figures": figures.main,
    "throughput": throughput.main,
    "replay_throughput": replay_throughput.main,
    "validate": lambda argv: run_command(validate.Args, validate.main, argv),
    "procgen_parity": lambda argv: run_command(procgen_parity.Args, procgen_parity.main, argv),
    "gpu_check": gpu_check.main,
    "op_profile": lambda argv: run_command(op_profile.OpProfileOptions, op_profile.main, argv),
    "gallery": gallery.main,
}
CKPT = "runs/existing/checkpoints/ckpt_000000000064.pt"

# (entry point, argv, text the one line must contain)
CASES = [
    # PPO: ranges declared beside each option
    ("ppo", ["--gamma", "1.5"], "invalid gamma 1.5; valid: a number in [0, 1]"),
    ("ppo", ["--gamma", "nan"], "invalid gamma nan"),
    ("ppo", ["--gae_lambda", "-1"], "invalid gae_lambda -1.0"),
    ("ppo", ["--clip_coef", "-1"], "invalid clip_coef -1.0"),
    ("ppo", ["--clip_coef", "inf"], "invalid clip_coef inf"),
    ("ppo", ["--max_grad_norm", "-1"], "invalid max_grad_norm -1.0; valid: a number > 0"),
    ("ppo", ["--max_grad_norm", "0"], "invalid max_grad_norm 0.0"),
    ("ppo", ["--reward_clip", "-1"], "invalid reward_clip -1.0"),
    ("ppo", ["--seed", "-1"], "invalid seed -1; valid: an integer in [0, 2^32)"),
    ("ppo", ["--seed", "4294967296"], "invalid seed 4294967296"),
    ("ppo", ["--scale", "inf"], "invalid scale inf"),
    ("ppo", ["--scale", "0.01"], "invalid scale 0.01: the narrowest conv layer would have 0 channels"),
    ("ppo", ["--scale", "0"], "invalid scale 0.0"),
    ("ppo", ["--scale", "nan"], "invalid scale nan"),
    ("ppo", ["--procgen_threads", "-1"], "invalid procgen_threads -1"),
    ("ppo", ["--wandb_project", "a/b"], "invalid wandb_project 'a/b'"),
    ("ppo", ["--wandb_entity", "a b"], "invalid wandb_entity 'a b'"),
    ("ppo", ["--total_timesteps", "0"], "invalid total_timesteps 0"),
    ("ppo", ["--total_timesteps", "1.5"], "invalid integer '1.5'"),
    ("ppo", ["--total_timesteps", "25e6x"], "invalid integer '25e6x'"),
    ("ppo", ["--num_envs", "0"], "invalid num_envs 0"),
    ("ppo", ["--num_envs", "5000"], "invalid num_envs 5000; valid: an integer in [1, 4096]"),
    ("ppo", ["--num_envs", "many"], "invalid integer 'many'"),
    ("ppo", ["--num_steps", "0"], "invalid num_steps 0"),
    ("ppo", ["--num_minibatches", "3"], "invalid num_minibatches 3: it must divide the batch"),
    ("ppo", ["--num_envs", "2", "--num_steps", "256", "--num_minibatches", "512"],
     "invalid num_minibatches 512: minibatches of 1 sample; valid: at most 256 with --norm_adv"),
    ("ppo", ["--update_epochs", "0"], "invalid update_epochs 0"),
    ("ppo", ["--learning_rate", "-1e-3"], "invalid learning_rate -0.001"),
    ("ppo", ["--learning_rate", "inf"], "invalid learning_rate inf"),
    ("ppo", ["--ent_coef", "-0.1"], "invalid ent_coef -0.1"),
    ("ppo", ["--vf_coef", "nan"], "invalid vf_coef nan"),
    ("ppo", ["--target_kl", "0"], "invalid target_kl 0.0"),
    ("ppo", ["--total_timesteps", "1000"], "invalid total_timesteps 1000; valid: at least one batch"),
    ("ppo", ["--num_envs", "4096", "--num_steps", "1048576", "--num_minibatches", "1", "--total_timesteps", "1e10"],
     "invalid num_envs x num_steps: it needs"),
    # PPO: choices and rules between options
    ("ppo", ["--env_id", "pong"], "invalid env_id 'pong'; valid: bigfish, bossfight"),
    ("ppo", ["--distribution_mode", "medium"], "invalid distribution_mode 'medium'; valid: easy, hard"),
    ("ppo", ["--track", "zeroshot"], "invalid track 'zeroshot'"),
    ("ppo", ["--encoder", "resnet"], "invalid encoder 'resnet'; valid: impala, impoola, nature"),
    ("ppo", ["--pooling", "median"], "invalid pooling 'median'"),
    ("ppo", ["--pool_size", "0"], "invalid pool_size 0"),
    ("ppo", ["--pooling", "flatten", "--pool_size", "2"], "invalid pool_size 2 for pooling 'flatten'"),
    ("ppo", ["--dropout", "1"], "invalid dropout 1.0"),
    ("procgen_parity", ["--num_seeds", "1"], "invalid num_seeds 1; valid: an integer in [2, 1000]"),
    ("procgen_parity", ["--games", "pong"], "invalid games 'pong'"),
    ("procgen_parity", ["--games"], "invalid games: an empty list"),
    ("validate", ["--preset", "cleanrl"], "invalid preset 'cleanrl'; valid: train-procgen, train-procgen-torch"),
    ("validate", ["--diagnostic_updates", "245"], "invalid diagnostic_updates 245; valid: an integer in [0, 244]"),
    ("ppo", ["--reward_norm_gamma", "1.5"], "invalid reward_norm_gamma 1.5; valid: a number in [0, 1]"),
    ("ppo", ["--encoder", "nature", "--maxpool_padding", "same"],
     "invalid maxpool_padding 'same' for encoder 'nature'"),
    ("ppo", ["--dropout", "-0.1"], "invalid dropout -0.1"),
    ("ppo", ["--encoder", "nature", "--cnn_filters", "0", "0", "0"], "invalid cnn_filters (0, 0, 0)"),
    ("ppo", ["--encoder", "nature", "--scale", "5"], "invalid scale 5.0 for encoder 'nature'"),
    ("ppo", ["--encoder", "nature", "--positional_encoding"], "invalid positional_encoding for encoder 'nature'"),
    ("ppo", ["--encoder", "impoola", "--cnn_filters", "8", "8", "8"],
     "invalid cnn_filters (8, 8, 8): it applies only with --encoder nature"),
    ("ppo", ["--pe_placement", "last"], "invalid pe_placement 'last': it applies only with --positional_encoding"),
    ("ppo", ["--pruning_target", "0.5"], "invalid pruning_target 0.5: it applies only with --pruning"),
    ("ppo", ["--pruning_mode", "global"], "invalid pruning_mode 'global': it applies only with --pruning"),
    ("ppo", ["--redo_tau", "0.1"], "invalid redo_tau 0.1: it applies only with --redo"),
    ("ppo", ["--redo_mode", "published"], "invalid redo_mode 'published': it applies only with --redo"),
    ("ppo", ["--no-normalize_reward", "--reward_clip", "5"], "invalid reward_clip 5.0: it applies only with"),
    ("dqn", ["--exploration", "softmax", "--end_e", "0.1"],
     "invalid end_e 0.1: it applies only with --exploration egreedy"),
    ("dqn", ["--softmax_temperature", "2"],
     "invalid softmax_temperature 2.0: it applies only with --exploration softmax"),
    ("dqn", ["--no-prioritized", "--alpha", "0.6"], "invalid alpha 0.6: it applies only with --prioritized"),
    ("ppo", ["--pruning_start", "0.9", "--pruning_end", "0.1"], "invalid pruning_start/pruning_end 0.9/0.1"),
    ("ppo", ["--pruning", "--redo"], "invalid combination --pruning --redo"),
    ("ppo", ["--redo_every", "0"], "invalid redo_every 0"),
    ("ppo", ["--redo_tau", "-1"], "invalid redo_tau -1.0"),
    ("ppo", ["--redo_mode", "textbook"], "invalid redo_mode 'textbook'; valid: dataflow, published, release"),
    ("ppo", ["--redo", "--pooling", "softmoe"], "invalid --redo with pooling 'softmoe'"),
    ("ppo", ["--redo", "--redo_mode", "release", "--pooling", "depthwise"],
     "invalid redo_mode 'release' with pooling 'depthwise'"),
    ("ppo", ["--checkpoint_every", "0"], "invalid checkpoint_every 0"),
    ("ppo", ["--keep_checkpoints", "0"], "invalid keep_checkpoints 0"),
    ("ppo", ["--checkpoint_signals", "SIGKILL"], "invalid checkpoint_signals value 'SIGKILL'"),
    ("ppo", ["--checkpoint_signals", "SIGFOO"], "invalid checkpoint_signals value 'SIGFOO'"),
    ("ppo", ["--checkpoint_signals", "SIGTERM", "SIGCHLD"],
     "invalid checkpoint_signals value 'SIGCHLD'; valid: SIGTERM"),
    ("ppo", ["--checkpoint_signals", "SIGPIPE"], "invalid checkpoint_signals value 'SIGPIPE'"),
    ("ppo", ["--checkpoint_signals", "winch"], "invalid checkpoint_signals value 'winch'"),
    ("ppo", ["--eval_every_fraction", "0"], "invalid eval_every_fraction 0.0"),
    ("ppo", ["--eval_every_fraction", "1.5"], "invalid eval_every_fraction 1.5"),
    ("ppo", ["--num_eval_episodes", "-1"], "invalid num_eval_episodes -1"),
    ("ppo", ["--num_eval_envs", "0"], "invalid num_eval_envs 0"),
    ("ppo", ["--wandb_mode", "loud"], "invalid wandb_mode 'loud'; valid: disabled, offline, online"),
    ("ppo", ["--wandb_mode", "online"], "invalid wandb_mode 'online': no W&B credentials"),
    ("ppo", ["--precision", "fp16"], "invalid precision 'fp16'; valid: bf16, float32"),
    ("ppo", ["--compile_mode", "fast"], "invalid compile_mode 'fast'; valid: default, max-autotune, "),
    ("ppo", ["--torch_threads", "0"], "invalid torch_threads 0"),
    ("ppo", ["--preset", "nope"], "invalid preset 'nope'; valid: train-procgen, train-procgen-torch"),
    ("ppo", ["--preset"], "invalid --preset without a name"),
    ("ppo", ["--learning_rat", "1e-3"], "Unrecognized options: --learning_rat"),
    # PPO: the run directory (path safety, existing runs, resume)
    ("ppo", ["--run_name", "../x"], "invalid run_name '../x': it contains a path separator"),
    ("ppo", ["--run_name", ""], "invalid run_name '': it is empty"),
    ("ppo", ["--run_name", "."], "invalid run_name '.'"),
    ("ppo", ["--run_name", "x" * 300], "it is 300 bytes long"),
    ("ppo", ["--exp_name", "x/../../y"], "invalid exp_name 'x/../../y'"),
    ("ppo", ["--exp_name", ".."], "invalid exp_name '..'"),
    ("ppo", ["--output_dir", "blocker"], "invalid output_dir 'blocker': 'blocker' is a file"),
    ("ppo", ["--output_dir", "blocker/runs"], "invalid output_dir 'blocker/runs': 'blocker' is a file"),
    ("ppo", ["--output_dir", "/proc/impoola"], "invalid output_dir '/proc/impoola'"),  # nothing can be made there
    ("ppo", ["--output_dir", "runs", "--run_name", "existing"], "already exists; valid: pass --resume"),
    ("ppo", ["--output_dir", "runs", "--run_name", "corrupt", "--resume"], "corrupt checkpoint"),
    ("ppo", ["--output_dir", "runs", *V1_PPO, "--encoder", "impala"], "encoder 'impoola' (checkpoint) vs 'impala'"),
    ("ppo", ["--output_dir", "runs", *V1_PPO, "--seed", "2"], "seed 1 (checkpoint) vs 2 (now)"),
    ("ppo", ["--output_dir", "runs", *V1_PPO, "--num_steps", "32"], "num_steps 16 (checkpoint) vs 32 (now)"),
    ("ppo", ["--output_dir", "runs", *V1_PPO, "--total_timesteps", "32"],
     "invalid total_timesteps for --resume: the checkpoint is at step 64"),
    # DQN
    ("dqn", ["--n_step", "1000"], "invalid n_step 1000; valid: an integer in [1, 100]"),
    ("dqn", ["--n_step", "0"], "invalid n_step 0"),
    ("dqn", ["--alpha", "nan"], "invalid alpha nan"),
    ("dqn", ["--beta", "2"], "invalid beta 2.0"),
    ("dqn", ["--train_frequency", "inf"], "invalid train_frequency inf"),
    ("dqn", ["--train_frequency", "0"], "invalid train_frequency 0.0"),
    ("dqn", ["--tau", "1.5"], "invalid tau 1.5; valid: a number in (0, 1]"),
    ("dqn", ["--tau", "0"], "invalid tau 0.0"),
    ("dqn", ["--start_e", "2"], "invalid start_e 2.0"),
    ("dqn", ["--end_e", "-0.1"], "invalid end_e -0.1"),
    ("dqn", ["--exploration_fraction", "0"], "invalid exploration_fraction 0.0"),
    ("dqn", ["--gamma", "-0.1"], "invalid gamma -0.1"),
    ("dqn", ["--max_grad_norm", "-1"], "invalid max_grad_norm -1.0"),
    ("dqn", ["--batch_size", "0"], "invalid batch_size 0"),
    ("dqn", ["--buffer_size", "4", "--batch_size", "8"], "invalid buffer_size 4; valid: at least batch_size (8)"),
    ("dqn", ["--buffer_size", "1000", "--batch_size", "8", "--num_envs", "64", "--n_step", "100"],
     "invalid buffer_size 1000; valid: at least num_envs x (n_step + 1)"),
    ("dqn", ["--buffer_size", "1e9"], "invalid buffer_size: it needs"),
    ("dqn", ["--buffer_size", "1e5", "--save_buffer"], "invalid --save_buffer: the replay memory needs"),
    ("dqn", ["--buffer_size", "1.5e6x"], "invalid integer '1.5e6x'"),
    ("dqn", ["--learning_starts", "2e7", "--total_timesteps", "1e7"], "invalid learning_starts 20000000"),
    ("dqn", ["--replay_mode", "paper"], "invalid replay_mode 'paper'; valid: release, textbook"),
    ("dqn", ["--exploration", "boltzmann"], "invalid exploration 'boltzmann'; valid: egreedy, softmax"),
    ("dqn", ["--softmax_temperature", "0"], "invalid softmax_temperature 0.0"),
    ("dqn", ["--log_every", "0"], "invalid log_every 0"),
    ("dqn", ["--total_timesteps", "10"], "invalid total_timesteps 10; valid: at least num_envs (128)"),
    ("dqn", ["--preset", "train-procgen"], "invalid preset 'train-procgen' for dqn"),
    ("dqn", ["--seed", "-1"], "invalid seed -1"),
    ("dqn", ["--run_name", "a/b"], "invalid run_name 'a/b'"),
    ("dqn", ["--output_dir", "blocker"], "invalid output_dir 'blocker'"),
    # evaluate
    ("evaluate", ["nowhere"], "no checkpoint at 'nowhere'"),
    ("evaluate", ["corrupt.pt"], "corrupt checkpoint 'corrupt.pt'"),
    ("evaluate", [CKPT, "--conditions", "train,moon"],
     "invalid condition 'moon'; valid: train, test, finetuning, noise"),
    ("evaluate", [CKPT, "--num_episodes", "0"], "invalid num_episodes 0"),
    ("evaluate", [CKPT, "--num_envs", "0"], "invalid num_envs 0"),
    ("evaluate", [CKPT, "--noise_stds", "0"], "invalid noise_stds 0.0"),
    ("evaluate", [CKPT, "--noise_stds", "nan"], "invalid noise_stds nan"),
    ("evaluate", [CKPT, "--conditions", "noise", "--noise_stds"],
     "invalid noise_stds: an empty list; valid: at least one"),
    ("figures", ["--formats"], "invalid formats: an empty list"),
    ("ppo", ["--checkpoint_signals"], "invalid checkpoint_signals: an empty list"),
    ("evaluate", [CKPT, "--seed", "-1"], "invalid seed -1"),
    ("evaluate", [CKPT, "--video_episodes", "0"], "invalid video_episodes 0"),
    ("evaluate", [CKPT, "--out", "blocker"], "invalid out 'blocker': 'blocker' is a file"),
    ("evaluate", [CKPT, "--out", "blocker/eval"], "invalid out 'blocker/eval'"),
    ("evaluate", [CKPT, "--out", "/proc/impoola/eval"], "invalid out '/proc/impoola/eval'"),
    ("evaluate", [CKPT, "--num_threads", "0"], "invalid num_threads 0"),
    ("evaluate", [CKPT, "--policy", "argmax"], "invalid policy 'argmax'; valid: greedy, release, sample"),
    ("evaluate", [CKPT, "--num_episodes", "1e3x"], "invalid integer '1e3x'"),
    ("evaluate", [], "a ckpt_*.pt file or a run directory (its newest checkpoint) (required)"),
    # analyze
    ("analyze", ["nowhere"], "no checkpoint at 'nowhere'"),
    ("analyze", [CKPT, "--what", "dormant,colour"], "invalid analysis 'colour'"),
    ("analyze", [CKPT, "--latency_repeats", "-5"], "invalid latency_repeats -5"),
    ("analyze", [CKPT, "--tau", "2"], "invalid tau 2.0"),
    ("analyze", [CKPT, "--dormant_envs", "0"], "invalid dormant_envs 0"),
    ("analyze", [CKPT, "--num_backgrounds", "8"], "invalid num_backgrounds 8; valid: an integer in [1, 7]"),
    ("analyze", [CKPT, "--max_shift", "-1"], "invalid max_shift -1"),
    ("analyze", [CKPT, "--batch_size", "0"], "invalid batch_size 0"),
    ("analyze", [CKPT, CKPT], "missing --out"),
    ("analyze", [CKPT, "--out", "blocker"], "invalid out 'blocker'"),
    ("analyze", [CKPT, "--vmax", "0"], "invalid vmax 0.0"),
    ("analyze", [CKPT, "--image_seed", "-1"], "invalid image_seed -1"),
    # benchmark launcher
    ("benchmark", ["--env_ids", "bigfsh", "--command", "python x.py"], "invalid env_id 'bigfsh'"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py --seed 3"], "sets --seed"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--workers", "0"], "invalid workers 0"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--max_requeues", "-1"],
     "invalid max_requeues -1"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--num_seeds", "0"], "invalid num_seeds 0"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--seeds", "-1"], "invalid seeds -1"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--num_seeds", "2", "--seeds", "1"],
     "invalid --num_seeds with --seeds"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--tag", "a", "b"], "2 tags for 1 commands"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--seeds", "1", "1"],
     "invalid seeds 1 1: seed 1 is given twice; valid: distinct seeds"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--seeds"], "invalid seeds: an empty list"),
    ("ppo", ["--encoder", "nature", "--cnn_filters"], "invalid cnn_filters (); valid: 3 positive integers"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--tag", "a/b"], "invalid name part 'a/b'"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--backend", "pbs"],
     "invalid backend 'pbs'; valid: local, slurm"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--time", "0"], "invalid time 0"),
    ("benchmark", ["--env_ids", "bigfish", "--command", "python x.py", "--mem_gb", "0"], "invalid mem_gb 0.0"),
    ("benchmark", ["--env_ids", "bigfish"], "--command [STR [STR ...]] training command(s)"),
    # figures
    ("figures", ["--smoothing", "1.5"], "invalid smoothing 1.5; valid: a number in [0, 1)"),
    ("figures", ["--smoothing", "-0.1"], "invalid smoothing -0.1"),
    ("figures", ["--reps", "0"], "invalid reps 0"),
    ("figures", ["--seed", "-1"], "invalid seed -1"),
    ("figures", ["--source", "wandb"], "invalid --source wandb without --entity"),
    ("figures", ["--source", "nowhere"], "invalid source 'nowhere': it does not exist"),
    ("figures", ["--source", "bad.csv"], "invalid source 'bad.csv': missing columns seed, step, metric, value"),
    ("figures", ["--out", "blocker"], "invalid out 'blocker': 'blocker' is a file"),
    ("figures", ["--source", "runs", "--export", "blocker/x.csv"], "invalid export 'blocker/x.csv'"),
    ("figures", ["--figures", "nope"], "invalid figures value 'nope'"),
    ("figures", ["--compare", "ab"], "invalid compare 'ab'; valid: MODEL_X:MODEL_Y"),
    ("figures", ["--num_points", "1"], "invalid num_points 1"),
    ("figures", ["--translation", "missing.csv"], "invalid translation 'missing.csv': no such file"),
    ("figures", ["--translation", "runs/existing/config.json"], "invalid translation 'runs/existing/config.json'"),
    ("figures", ["--translation", "bad.csv"], "invalid translation 'bad.csv'"),
    ("figures", ["--formats", "xyz"], "invalid formats value 'xyz'; valid: eps"),
    ("figures", ["--source", "runs", "--compare", "a:impoola_s0.5"], "invalid compare: unknown model(s) a"),
    ("figures", ["--source", "runs", "--models", "nope"], "invalid models: unknown model(s) nope"),
    ("figures", ["--source", "broken_runs"], "broken_runs/run/config.json': Expecting property name"),
    # throughput benchmarks
    ("validate", ["--num_seeds", "0"], "invalid num_seeds 0"),
    ("validate", ["--total_timesteps", "-5"], "invalid total_timesteps -5"),
    ("validate", ["--seed", "-1"], "invalid seed -1"),
    ("validate", ["--env_id", "pong"], "invalid env_id 'pong'"),
    ("validate", ["--test_episodes", "nan"], "invalid integer 'nan'"),
    ("validate", ["--compare_only", "runs/nothing_here"], "invalid compare_only 'runs/nothing_here'"),
    ("validate", ["--output_dir", "blocker/x"], "invalid output_dir 'blocker/x': 'blocker' is a file"),
    ("validate", ["--output_dir", "/proc/impoola"], "invalid output_dir '/proc/impoola'"),  # before any run starts
    ("validate", ["--figure", "blocker/f.png"], "invalid figure 'blocker/f.png': 'blocker' is a file"),
    ("gpu_check", ["--budget_s", "-5"], "invalid budget_s -5"),
    ("gpu_check", ["--budget_s", "nan"], "invalid budget_s nan"),
    ("op_profile", ["--variant", "fp16"], "invalid variant 'fp16'"),
    ("op_profile", ["--num_envs", "0"], "invalid num_envs 0"),
    ("op_profile", ["--scale", "inf"], "invalid scale inf"),
    ("op_profile", ["--num_minibatches", "3"], "invalid num_minibatches 3"),
    ("gallery", ["--out", "blocker"], "invalid out 'blocker'"),
    ("throughput", ["--scale", "inf"], "invalid scale inf"),
    ("throughput", ["--variants", "fp16"], "invalid variant 'fp16'"),
    ("throughput", ["--num_envs", "0"], "invalid num_envs 0"),
    ("throughput", ["--repeats", "0"], "invalid repeats 0"),
    ("throughput", ["--rounds", "0"], "invalid rounds 0"),
    ("throughput", ["--json", "blocker/x.json"], "invalid json 'blocker/x.json': 'blocker' is a file"),
    ("throughput", ["--algo", "a2c"], "invalid algo 'a2c'; valid: dqn, ppo"),
    ("throughput", ["--num_minibatches", "3"], "invalid num_minibatches 3: it must divide"),
    ("throughput", ["--env_id", "pong"], "invalid env_id 'pong'"),
    ("throughput", ["--procgen_threads", "-1"], "invalid procgen_threads -1"),
    ("replay_throughput", ["--capacity", "0"], "invalid capacity 0"),
    ("replay_throughput", ["--batch", "0"], "invalid batch 0"),
    ("replay_throughput", ["--device", "tpu:x"], "invalid device 'tpu:x'"),
    ("replay_throughput", ["--gather_capacity", "1e8"], "invalid gather_capacity / capacity: it needs"),
    ("replay_throughput", ["--num_envs", "0"], "invalid num_envs 0"),
    ("replay_throughput", ["--capacity", "100", "--gather_capacity", "100"], "invalid batch 512"),
]


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A working directory with a previous version's run, a corrupt checkpoint and things in the wrong place."""
    shutil.copytree(V1 / "v1_ppo", tmp_path / "runs" / "existing")
    (tmp_path / "runs" / "existing" / "done").unlink()  # an interrupted run: --resume continues it
    (tmp_path / "runs" / "corrupt" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "corrupt" / "checkpoints" / "ckpt_000000000032.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "blocker").write_text("a file where a directory is expected\n")
    (tmp_path / "bad.csv").write_text("model,game\nimpoola_s2,bigfish\n")
    shutil.copytree(V1 / "v1_ppo", tmp_path / "broken_runs" / "run")
    (tmp_path / "broken_runs" / "run" / "config.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    free_1gib = SimpleNamespace(free=2**30)
    monkeypatch.setattr("impoola.replay.persistence.shutil.disk_usage", lambda path: free_1gib)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("entry", "argv", "message"), CASES,
                         ids=[f"{entry}:{' '.join(argv)[:60]}" for entry, argv, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace, capsys, entry, argv, message):
    assert_refused(workspace, capsys, entry, argv, message)


@pytest.mark.parametrize("url", ["http://[", "http://host:port", "api.wandb.ai", "ftp://wandb.example"])
def test_a_bad_wandb_base_url_is_refused_naming_the_variable(workspace, capsys, monkeypatch, url):
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)  # credentials found: the URL alone is wrong
    assert_refused(workspace, capsys, "ppo", ["--wandb_mode", "online"], f"invalid WANDB_BASE_URL {url!r}")


def assert_refused(workspace: Path, capsys, entry: str, argv: list[str], message: str) -> None:
    """`entry` with `argv` exits 2 with one `error:` line holding `message`, and the workspace is as it was."""
    before = snapshot(workspace)
    code = ENTRY_POINTS[entry](argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert snapshot(workspace) == before


def test_the_table_covers_every_entry_point_and_enough_cases():
    assert len(CASES) >= 100 and {entry for entry, _, _ in CASES} == set(ENTRY_POINTS)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--total_timesteps", "25e6"], {"total_timesteps": 25_000_000}),
    (["--total-timesteps", "1.5e7", "--num-envs", "8"], {"total_timesteps": 15_000_000, "num_envs": 8}),
    (["--procgen_threads", "0"], {"procgen_threads": 0}),
    (["--seed", "4294967295", "--num_eval_envs", "4096"], {"seed": 2**32 - 1, "num_eval_envs": 4096}),
    (["--preset", "train-procgen"], {"preset": "train-procgen", "encoder": "impala", "scale": 1.0, "gamma": 0.999,
                                     "learning_rate": 5e-4, "scale_lr": False, "clip_vloss": True}),
    (["--preset", "train-procgen", "--gamma", "0.99", "--num_envs", "8"],
     {"preset": "train-procgen", "gamma": 0.99, "num_envs": 8, "encoder": "impala"}),
])
def test_legitimate_edge_inputs_parse(argv, expected):
    from impoola.options import flat_options

    values = flat_options(parse_cli(ppo_training.Args, argv, algorithm="ppo"))
    assert {key: values[key] for key in expected} == expected


def test_dqn_accepts_the_readmes_spellings():
    from impoola.options import flat_options

    values = flat_options(parse_cli(dqn_training.Args, ["--buffer_size", "1e6", "--total-timesteps", "25e6"]))
    assert (values["buffer_size"], values["total_timesteps"]) == (10**6, 25 * 10**6)


def test_train_procgen_preset_holds_the_published_settings():
    """train-procgen resolves to what train-procgen computed (its README); train-procgen-torch is the preset as it
    was, the same hyperparameters on PyTorch's defaults."""
    from impoola.presets import PRESETS

    hyperparameters = {
        "encoder": "impala", "scale": 1.0, "pooling": "flatten", "gamma": 0.999, "gae_lambda": 0.95,
        "learning_rate": 5e-4,
        "scale_lr": False, "num_envs": 64, "num_steps": 256, "num_minibatches": 8, "update_epochs": 3,
        "clip_coef": 0.2, "clip_vloss": True, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
        "normalize_reward": True, "reward_clip": 10.0, "distribution_mode": "easy", "track": "generalization",
        "anneal_lr": False}
    assert PRESETS["train-procgen"].values == {**hyperparameters, "reward_norm_gamma": 0.99, "encoder_init": "glorot",
                                               "maxpool_padding": "same", "adam_eps_form": "tf"}
    assert PRESETS["train-procgen-torch"].values == {**hyperparameters, "reward_norm_gamma": 0.999,
                                                     "encoder_init": "torch", "maxpool_padding": "symmetric",
                                                     "adam_eps_form": "torch"}
    args = parse_cli(ppo_training.Args, ["--preset", "train-procgen"], algorithm="ppo")
    assert args.model_name == "impala_s1_samepool_glorot" and ppo_training.base_learning_rate(args) == 5e-4
    assert (args.model.encoder_init, args.model.maxpool_padding, args.adam_eps_form, args.reward_norm_gamma) == (
        "glorot", "same", "tf", 0.99)
    args = parse_cli(ppo_training.Args, ["--preset", "train-procgen-torch"], algorithm="ppo")
    assert args.model_name == "impala_s1"


def test_defaults_keep_the_releases_numerics():
    """Without a preset the four train-procgen choices keep the release's behaviour."""
    args = parse_cli(ppo_training.Args, [], algorithm="ppo")
    assert (args.model.encoder_init, args.model.maxpool_padding, args.adam_eps_form, args.reward_norm_gamma) == (
        "torch", "symmetric", "torch", None)
    assert ppo_training.reward_discount(args) == args.gamma and args.model_name == "impoola_s2"


def test_help_has_one_section_per_group_and_shows_ranges(capsys):
    with pytest.raises(SystemExit) as info:
        parse_cli(ppo_training.Args, ["--help"], algorithm="ppo")
    help_text = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    sections = ["env options", "model options", "baselines options", "algorithm options", "run options",
                "eval options", "logging options", "speed options"]
    positions = [help_text.index(section) for section in sections]
    assert positions == sorted(positions)
    assert help_text.index("--gamma") > help_text.index("--encoder")  # PPO's hyperparameters after the model
    assert "valid: a number in [0, 1]" in help_text and "valid: an integer in [0, 2^32)" in help_text


def test_more_eval_envs_than_episodes_and_procgen_threads_0_run(workspace, capsys):
    """Evaluation with 8 envs for 2 episodes, Procgen stepping in the calling thread: a previous version's run."""
    assert evaluate.main([CKPT, "--conditions", "train", "--num_episodes", "2", "--num_envs", "8", "--num_threads", "1",
                          "--out", "eval"]) == 0
    assert (workspace / "eval" / "results.json").exists()
    code = ENTRY_POINTS["ppo"](["--output_dir", "runs", "--run_name", "edge", "--env_id", "bigfish", "--num_envs", "2",
                               "--num_steps", "16", "--total_timesteps", "32", "--num_minibatches", "2",
                               "--update_epochs", "1", "--num_eval_episodes", "0", "--num_final_eval_episodes", "2",
                               "--num_eval_envs", "8", "--scale", "0.5", "--procgen_threads", "0",
                               "--wandb_mode", "disabled", "--no-progress_bar"])
    assert code == 0 and (workspace / "runs" / "edge" / "done").exists()


def test_real_entry_point_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "ppo_training.py"), "--gamma", "1.5", "--output_dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: invalid gamma 1.5; valid: a number in [0, 1]\n"
    assert not list(tmp_path.iterdir())


# Options built in Python (as the tests and notebooks build them) check themselves too, before anything exists.
@pytest.mark.parametrize(("algorithm", "overrides", "message"), [
    ("ppo", {"env_id": "pong"}, "invalid env_id 'pong'; valid: bigfish, bossfight"),
    ("ppo", {"distribution_mode": "medium"}, "invalid distribution_mode 'medium'; valid: easy, hard"),
    ("ppo", {"track": "zeroshot"}, "invalid track 'zeroshot'; valid: generalization, efficiency, finetuning"),
    ("ppo", {"num_minibatches": 3}, "invalid num_minibatches 3: it must divide the batch"),
    ("ppo", {"num_envs": 0}, "invalid num_envs 0"),
    ("ppo", {"total_timesteps": -5}, "invalid total_timesteps -5"),
    ("ppo", {"scale": 0.0}, "invalid scale 0.0"),
    ("ppo", {"update_epochs": 0}, "invalid update_epochs 0"),
    ("dqn", {"env_id": "pong"}, "invalid env_id 'pong'; valid: bigfish, bossfight"),
    ("dqn", {"replay_mode": "paper"}, "invalid replay_mode 'paper'; valid: release, textbook"),
    ("dqn", {"exploration": "ucb"}, "invalid exploration 'ucb'; valid: egreedy, softmax"),
    ("dqn", {"buffer_size": 4, "batch_size": 8}, "invalid buffer_size 4; valid: at least batch_size (8)"),
    ("dqn", {"learning_starts": 64}, "invalid learning_starts 64; valid: 0 <= learning_starts < total_timesteps (64)"),
    ("dqn", {"num_envs": 0}, "invalid num_envs 0"),
    ("dqn", {"total_timesteps": 1}, "invalid total_timesteps 1; valid: at least num_envs (2)"),
    ("dqn", {"train_frequency": 0.0}, "invalid train_frequency 0.0"),
    ("dqn", {"tau": 1.5}, "invalid tau 1.5; valid: a number in (0, 1]"),
    ("dqn", {"end_e": -0.1}, "invalid end_e -0.1"),
    ("dqn", {"n_step": 0}, "invalid n_step 0"),
    ("dqn", {"scale": 0.0}, "invalid scale 0.0"),
])
def test_options_built_in_python_check_themselves_in_one_line(tmp_path, algorithm, overrides, message):
    with pytest.raises(ValueError) as info:
        (tiny_ppo_args if algorithm == "ppo" else tiny_dqn_args)(tmp_path, **overrides)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing created
