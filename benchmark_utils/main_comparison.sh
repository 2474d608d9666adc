#!/usr/bin/env bash
# Main comparison at τ = 2: Impala-CNN, Impala + gradual magnitude pruning, Impala + SoftMoE head,
# Impala + ReDo, and Impoola-CNN; PPO, easy, generalization track, 16 games x 5 seeds (400 runs).
# Usage: benchmark_utils/main_comparison.sh [launcher options: --dry_run | --workers N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
base="python ppo_training.py --scale 2 --wandb_tags main_comparison"
exec python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command \
  "$base --encoder impala" \
  "$base --encoder impala --pruning" \
  "$base --encoder impala --pooling softmoe" \
  "$base --encoder impala --redo" \
  "$base --encoder impoola" \
  "$@"
