#!/usr/bin/env bash
# Efficiency track (train and test on the full level distribution): PPO at τ = 2, Impala-CNN and Impoola-CNN,
# 16 games x 5 seeds, easy (experiment ppo_efficiency) and hard with lr annealing (ppo_efficiency_hard).
# Usage: benchmark_utils/efficiency.sh [launcher options: --dry_run | --workers N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
easy="python ppo_training.py --scale 2 --track efficiency --exp_name ppo_efficiency --wandb_tags efficiency"
hard="python ppo_training.py --scale 2 --track efficiency --distribution_mode hard --anneal_lr"
hard+=" --exp_name ppo_efficiency_hard --wandb_tags efficiency"
exec python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command \
  "$easy --encoder impala" \
  "$easy --encoder impoola" \
  "$hard --encoder impala" \
  "$hard --encoder impoola" \
  "$@"
