#!/usr/bin/env bash
# Agents for the translation-sensitivity analysis: PPO on bigfish (easy) at τ = 2 - Impala-CNN vs Impoola-CNN
# (shared with the main comparison) and Nature-CNN vs Nature-CNN w/ GAP (the release's pair); one seed by default
# (more: --num_seeds N). Then compare them, e.g.:
#   python analyze.py runs/bigfish__ppo__impala_s2__s1 runs/bigfish__ppo__impoola_s2__s1 --what translation
# Usage: benchmark_utils/translation_agents.sh [launcher options: --dry_run | --num_seeds N | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
base="python ppo_training.py --scale 2 --wandb_tags translation"
exec python -m benchmark_utils.benchmark --env_ids bigfish --num_seeds 1 --command \
  "$base --encoder impala" \
  "$base --encoder impoola" \
  "$base --encoder nature" \
  "$base --encoder nature --pooling avg" \
  "$@"
