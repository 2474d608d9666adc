"""The paper's Figure 1 numbers (facts sheet §5 IQMs, §1 parameter counts) for drawing and overlaying it."""

from __future__ import annotations

import pandas as pd

# Final test IQM (PPO, easy, full distribution, 25M steps), read off the paper's scaling figure (±0.005).
PUBLISHED_IQM: dict[str, dict[int, float]] = {
    "impoola": {1: 0.481, 2: 0.569, 3: 0.588, 4: 0.600},
    "impala": {1: 0.347, 2: 0.494, 3: 0.514},
    "nature": {1: 0.037, 2: 0.077, 3: 0.081},
}
READ_OFF_ERROR = 0.005
# Exact parameter counts of the whole PPO agent (encoder + actor + critic, 15 actions).
PARAM_COUNTS: dict[str, dict[int, int]] = {
    "impoola": {1: 110_160, 2: 409_488, 3: 902_352, 4: 1_588_752},
    "impala": {1: 626_256, 2: 1_441_680, 3: 2_450_640, 4: 3_653_136},
    "nature": {1: 342_448, 2: 563_712, 3: 819_792},
}
FAMILY_LABELS = {"impoola": "Impoola-CNN", "impala": "Impala-CNN", "nature": "Nature-CNN"}
FAMILY_COLORS = {"impoola": "#d62728", "impala": "#1f77b4", "nature": "#7f7f7f"}


def figure1_table() -> pd.DataFrame:
    """The published scaling points: columns family, scale, params, iqm, lower, upper (± the read-off error)."""
    rows = [(family, scale, PARAM_COUNTS[family][scale], iqm, iqm - READ_OFF_ERROR, iqm + READ_OFF_ERROR)
            for family, per_scale in PUBLISHED_IQM.items() for scale, iqm in per_scale.items()]
    return pd.DataFrame(rows, columns=["family", "scale", "params", "iqm", "lower", "upper"])
