#!/usr/bin/env bash
# PPO vs DQN at τ = 2 with Impala-CNN and Impoola-CNN: easy, generalization track, 16 games x 5 seeds.
# Run names: {game}__ppo__{model}__s{seed} (shared with the other PPO experiments) and {game}__dqn__{model}__s{seed}.
# Usage: benchmark_utils/ppo_vs_dqn.sh [launcher options: --dry_run | --workers N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command \
  "python ppo_training.py --encoder impala --scale 2 --wandb_tags ppo_vs_dqn" \
  "python ppo_training.py --encoder impoola --scale 2 --wandb_tags ppo_vs_dqn" \
  "python dqn_training.py --encoder impala --scale 2 --wandb_tags ppo_vs_dqn" \
  "python dqn_training.py --encoder impoola --scale 2 --wandb_tags ppo_vs_dqn" \
  "$@"
