"""Network statistics against the facts-sheet parameter counts, MACs, bytes and latency keys."""

from __future__ import annotations

import json

import pytest

from impoola.analysis.stats import measure_latency, network_stats
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent
from support.paths import DATA

REFERENCE = json.loads((DATA / "reference.json").read_text())

# Facts sheet §1: whole PPO agents with 15 actions.
PPO_PARAMS = {
    ("impala", 1): 626_256, ("impala", 2): 1_441_680, ("impala", 3): 2_450_640, ("impala", 4): 3_653_136,
    ("impoola", 1): 110_160, ("impoola", 2): 409_488, ("impoola", 3): 902_352, ("impoola", 4): 1_588_752,
    ("nature", 1): 342_448, ("nature", 2): 563_712, ("nature", 3): 819_792,
}


@pytest.mark.parametrize("encoder,scale", list(PPO_PARAMS))
def test_parameter_counts_match_facts_sheet(encoder, scale):
    ppo = network_stats(build_agent("ppo", ModelOptions(encoder=encoder, scale=scale), 15))
    dqn = network_stats(build_agent("dqn", ModelOptions(encoder=encoder, scale=scale), 15))
    assert ppo["charts/total_network_params"] == PPO_PARAMS[encoder, scale]
    assert dqn["charts/total_network_params"] == PPO_PARAMS[encoder, scale] - 257
    assert ppo["charts/total_network_param_bytes"] == 4 * PPO_PARAMS[encoder, scale]  # float32
    if f"{encoder}_{scale}" in REFERENCE["params"]:
        assert ppo["charts/total_network_params"] == REFERENCE["params"][f"{encoder}_{scale}"]
        assert dqn["charts/total_network_params"] == REFERENCE["params"][f"dqn_{encoder}_{scale}"]


def test_avg_pool_2x2_ablation_count():
    stats = network_stats(build_agent("ppo", ModelOptions(encoder="impoola", scale=1, pool_size=2), 15))
    assert stats["charts/total_network_params"] == 134_736


def test_macs_by_hand_for_nature():
    """Nature τ=1: convs to 15x15, 6x6 and 4x4 maps, then the linears; torchinfo counts parameters x positions."""
    macs = (32 * 3 * 64 + 32) * 15 * 15 + (64 * 32 * 16 + 64) * 6 * 6 + (64 * 64 * 9 + 64) * 4 * 4
    macs += 1024 * 256 + 256 + 256 * 15 + 15 + 256 + 1
    stats = network_stats(build_agent("ppo", ModelOptions(encoder="nature", scale=1), 15))
    assert stats["charts/total_network_m_macs"] == pytest.approx(macs / 1e6)


def test_impoola_has_fewer_params_similar_macs():
    impala = network_stats(build_agent("ppo", ModelOptions(encoder="impala", scale=2), 15))
    impoola = network_stats(build_agent("ppo", ModelOptions(encoder="impoola", scale=2), 15))
    assert impoola["charts/total_network_params"] < impala["charts/total_network_params"] / 3
    assert impoola["charts/total_network_m_macs"] == pytest.approx(impala["charts/total_network_m_macs"], rel=0.01)


def test_latency_keys_and_mode():
    agent = build_agent("ppo", ModelOptions(encoder="impoola", scale=0.25), 15).train()
    latency = measure_latency(agent, "cpu", batch_sizes=(8, 1), repeats=2, warmup=1)
    assert set(latency) == {"charts/latency_ms_b8", "charts/latency_ms_b1"}
    assert all(v > 0 for v in latency.values())
    assert agent.training
