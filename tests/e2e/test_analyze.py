"""`python analyze.py` on saved checkpoints: stats, dormant and translation outputs, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from analyze import main
from impoola.analysis.translation import read_matrix_csv
from impoola.run.checkpoint import save_checkpoint
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent


def make_run(root, name: str, kind: str, encoder: str) -> str:
    """A run directory with one checkpoint of an untrained tiny agent (stand-in for a tiny real run)."""
    torch.manual_seed(0)
    scale = 0.25 if encoder != "nature" else 1
    agent = build_agent(kind, ModelOptions(encoder=encoder, scale=scale), 15)
    args = {"env_id": "bigfish", "distribution_mode": "easy", "track": "generalization", "seed": 1,
            "encoder": encoder, "scale": scale, "pooling": None, "pool_size": 1, "cnn_filters": None}
    save_checkpoint(root / name / "checkpoints", 64, {"agent": agent.state_dict(), "args": args,
                                                      "agent_kind": kind, "num_actions": 15})
    return str(root / name)


def test_all_analyses_on_two_runs(tmp_path, capsys):
    runs = [make_run(tmp_path, "ppo_run", "ppo", "impala"), make_run(tmp_path, "dqn_run", "dqn", "impoola")]
    out = tmp_path / "analysis"
    main([*runs, "--what", "stats,dormant,translation", "--out", str(out), "--latency-repeats", "1",
          "--dormant_envs", "4", "--dormant_steps", "2", "--num_sprites", "2", "--num_backgrounds", "1",
          "--max_shift", "1", "--batch_size", "2", "--no-cuda"])
    assert "ppo_run" in capsys.readouterr().out
    for run in ("ppo_run", "dqn_run"):
        stats = json.loads((out / run / "stats.json").read_text())
        assert stats["charts/total_network_params"] > 0 and stats["charts/latency_ms_b256"] > 0
        dormant = json.loads((out / run / "dormant.json").read_text())
        assert 0 <= dormant["dormant_neurons/dormant_fraction"] <= 100
        assert sum(k.startswith("dormant_neurons/") and not k.endswith("_fraction") for k in dormant) == 16
        matrix = read_matrix_csv(out / run / "translation.csv")
        assert matrix.shape == (3, 3) and matrix[1, 1] == 0 and np.all(matrix >= 0)
        assert (out / run / "translation.png").exists() and (out / run / "translation.pdf").exists()
    assert (out / "translation_compare.png").exists() and (out / "translation_compare.pdf").exists()


@pytest.mark.parametrize("argv,message", [
    (["{run}", "--what", "dormant,sparsity"], "invalid analysis 'sparsity'; valid: dormant, translation, stats"),
    (["{missing}", "--what", "stats"], "no checkpoint at"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    paths = {"run": make_run(tmp_path, "run", "ppo", "nature"), "missing": tmp_path / "nowhere"}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
