#!/usr/bin/env bash
# Main comparison at τ = 2: Impala-CNN, Impala + gradual magnitude pruning, Impala + SoftMoE head,
# Impala + ReDo, and Impoola-CNN; PPO, easy, generalization track, 16 games x 5 seeds (400 runs).
# ReDo runs with --redo_mode published: the release's PPO script never called its reset function, so the
# paper's "Impala + ReDo" curve comes from runs that measured and logged dormant units but reset none.
# (--redo_mode dataflow, the default of --redo, and --redo_mode release are options beyond the paper.)
# Usage: benchmark_utils/main_comparison.sh [launcher options: --dry_run | --workers N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
base="python ppo_training.py --scale 2 --wandb_tags main_comparison"
exec python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command \
  "$base --encoder impala" \
  "$base --encoder impala --pruning" \
  "$base --encoder impala --pooling softmoe" \
  "$base --encoder impala --redo --redo_mode published" \
  "$base --encoder impoola" \
  "$@"
