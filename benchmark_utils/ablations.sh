#!/usr/bin/env bash
# Ablations on their 10 games (bigfish dodgeball ninja caveflyer starpilot heist plunder chaser coinrun fruitbot)
# x 5 seeds, PPO, easy: the Impala/Impoola references, then what replaces Impoola's global average pooling
# (2x2 average pooling, global max pooling, stacked 2x2 + 1x1, learned depthwise pooling), Impoola with a
# positional encoding, Impala with a 4th conv sequence and Impala with dropout 0.1 before its linear layer.
# Widths: TAUS (default "2"; the parameter tables cover TAUS="1 2 3 4").
# Usage: [TAUS="1 2 3 4"] benchmark_utils/ablations.sh [launcher options: --dry_run | --backend slurm ...]
set -euo pipefail
cd "$(dirname "$0")/.."
commands=()
for tau in ${TAUS:-2}; do
  base="python ppo_training.py --scale $tau --wandb_tags ablation"
  commands+=(
    "$base --encoder impala"
    "$base --encoder impoola"
    "$base --encoder impoola --pooling avg --pool_size 2"
    "$base --encoder impoola --pooling max"
    "$base --encoder impoola --pooling stacked"
    "$base --encoder impoola --pooling depthwise"
    "$base --encoder impoola --positional_encoding --pe_placement first"
    "$base --encoder impala --extra_stage"
    "$base --encoder impala --dropout 0.1"
  )
done
exec python -m benchmark_utils.benchmark --env_ids ablation --num_seeds 5 --command "${commands[@]}" "$@"
