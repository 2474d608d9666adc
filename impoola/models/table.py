"""The README's model table, generated from the code: `python -m impoola.models.table`.

Every model the paper compares, its CLI flags, its model name (τ = 2) and the parameter count of
its PPO agent (15 actions) at τ = 1..4, counted on freshly built agents (on the meta device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from impoola.baselines.options import BaselineOptions
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent, count_parameters

SCALES = (1, 2, 3, 4)
NAME_SCALE = 2


@dataclass(frozen=True)
class ModelRow:
    """One model of the table: a label and its option values (everything else at its default)."""

    label: str
    model: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    scales: tuple[int, ...] = SCALES

    def flags(self) -> str:
        """The CLI flags selecting this model (besides --scale)."""
        items = {**self.model, **self.baseline}
        return " ".join(f"--{k}" if v is True else f"--{k} {v}" for k, v in items.items())

    def name(self, scale: float = NAME_SCALE) -> str:
        """The model name in run names and W&B tags."""
        return ModelOptions(scale=scale, **self.model).model_name + BaselineOptions(**self.baseline).suffix

    def params(self) -> dict[int, int]:
        """PPO-agent parameter counts per τ."""
        with torch.device("meta"):
            return {s: count_parameters(build_agent("ppo", ModelOptions(scale=s, **self.model), 15))
                    for s in self.scales}


MODELS = (
    ModelRow("Impoola-CNN", {"encoder": "impoola"}),
    ModelRow("Impala-CNN", {"encoder": "impala"}),
    ModelRow("Nature-CNN (filters (16, 32, 32)·(τ+1))", {"encoder": "nature"}, scales=(1, 2, 3)),
    ModelRow("Nature + 1 conv", {"encoder": "nature", "extra_stage": True}, scales=(1, 2, 3)),
    ModelRow("Nature w/ GAP", {"encoder": "nature", "pooling": "avg"}, scales=(1, 2, 3)),
    ModelRow("Impala + SoftMoE", {"encoder": "impala", "pooling": "softmoe"}),
    ModelRow("Impala + gradual magnitude pruning (the paper's)", {"encoder": "impala"}, {"pruning": True}),
    ModelRow("Impala + global magnitude pruning (option)", {"encoder": "impala"},
             {"pruning": True, "pruning_mode": "global"}),
    ModelRow("Impala + ReDo as published: dormant units logged, no resets (the paper's)", {"encoder": "impala"},
             {"redo": True, "redo_mode": "published"}),
    ModelRow("Impala + ReDo, resets on the dataflow (option)", {"encoder": "impala"}, {"redo": True}),
    ModelRow("Impala + ReDo, the release's reset function (option)", {"encoder": "impala"},
             {"redo": True, "redo_mode": "release"}),
    ModelRow("avg pool 2x2", {"encoder": "impoola", "pool_size": 2}),
    ModelRow("global max pool", {"encoder": "impoola", "pooling": "max"}),
    ModelRow("stacked 2x2 ⊕ 1x1", {"encoder": "impoola", "pooling": "stacked"}),
    ModelRow("depthwise 8x8", {"encoder": "impoola", "pooling": "depthwise"}),
    ModelRow("4 blocks (16, 32, 32, 32)", {"encoder": "impala", "extra_stage": True}),
    ModelRow("positional encoding (first)", {"encoder": "impoola", "positional_encoding": True}),
    ModelRow("dropout 0.1", {"encoder": "impoola", "dropout": 0.1}),
)


def markdown() -> str:
    """The Markdown table of MODELS."""
    lines = [
        f"| model | name (τ = {NAME_SCALE}) | flags | " + " | ".join(f"τ={s}" for s in SCALES) + " |",
        "|---|---|---|" + "---:|" * len(SCALES),
    ]
    for row in MODELS:
        params = row.params()
        counts = " | ".join(f"{params[s]:,}" if s in params else "—" for s in SCALES)
        lines.append(f"| {row.label} | `{row.name()}` | `{row.flags()}` | {counts} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
