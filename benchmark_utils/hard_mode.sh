#!/usr/bin/env bash
# Hard mode (train vs test levels): PPO with learning-rate annealing at τ = 2, Impala-CNN and Impoola-CNN,
# on the agent-centered games caveflyer, ninja, coinrun, jumper x 5 seeds; experiment name ppo_hard.
# Usage: benchmark_utils/hard_mode.sh [launcher options: --dry_run | --workers N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
base="python ppo_training.py --scale 2 --distribution_mode hard --anneal_lr --exp_name ppo_hard --wandb_tags hard_mode"
exec python -m benchmark_utils.benchmark --env_ids caveflyer ninja coinrun jumper --num_seeds 5 --command \
  "$base --encoder impala" \
  "$base --encoder impoola" \
  "$@"
