#!/usr/bin/env bash
# Scaling study (the paper's Figure 1): PPO, easy, generalization track, 16 games x 5 seeds;
# Impala-CNN and Impoola-CNN at τ = 1..4, Nature-CNN at τ = 1..3 (its plotted filters) - 11 models, 880 runs.
# Usage: benchmark_utils/scaling.sh [launcher options: --dry_run | --workers N | --backend slurm --partition P ...]
set -euo pipefail
cd "$(dirname "$0")/.."
commands=()
for tau in 1 2 3 4; do
  commands+=("python ppo_training.py --encoder impala --scale $tau --wandb_tags scaling")
  commands+=("python ppo_training.py --encoder impoola --scale $tau --wandb_tags scaling")
done
for tau in 1 2 3; do
  commands+=("python ppo_training.py --encoder nature --scale $tau --wandb_tags scaling")
done
exec python -m benchmark_utils.benchmark --env_ids all --num_seeds 5 --command "${commands[@]}" "$@"
