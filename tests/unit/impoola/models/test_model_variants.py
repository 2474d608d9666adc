"""The paper's comparison models: parameter counts (facts §1 tables), names, shapes, SoftMoE routing, the table."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from impoola.baselines.options import BaselineOptions
from impoola.models.encoders import ModelOptions
from impoola.models import table
from impoola.models.agents import build_agent, count_parameters
from impoola.models.encoders import PE_PLACEMENTS, PositionalEncoding
from impoola.models.heads import SoftMoE
from support.paths import ROOT
from support.runs import tiny_ppo_args

FACTS_PPO_PARAMS = {  # facts sheet §1: whole PPO agent, 15 actions, τ = 1..4
    "impoola_s2": (110_160, 409_488, 902_352, 1_588_752),
    "impala_s2": (626_256, 1_441_680, 2_450_640, 3_653_136),
    "nature_s2": (342_448, 563_712, 819_792),
    "impoola_s2_k2": (134_736, 458_640, 976_080, 1_687_056),
    "impoola_s2_stacked": (142_928, 475_024, 1_000_656, 1_719_824),
    "impoola_s2_depthwise": (112_240, 413_648, 908_592, 1_597_072),
    "impala_s2_4seq": (279_280, 839_888, 1_686_192, 2_818_192),
    "impala_s2_softmoe": (446_480, 821_776, 1_390_608, 2_152_976),
}
SAME_AS = {  # variants that add no parameters
    "impala_s2_pruned": "impala_s2", "impala_s2_pruned_global": "impala_s2", "impala_s2_redo": "impala_s2",
    "impala_s2_redo_release": "impala_s2", "impala_s2_redo_published": "impala_s2",
    "impoola_s2_max": "impoola_s2", "impoola_s2_pe": "impoola_s2", "impoola_s2_dropout0.1": "impoola_s2",
}
NATURE_VARIANTS = {"nature_s2_4conv": (403_440, 704_352, 1_072_848), "nature_s2_avg": (96_688, 195_072, 328_272)}
ROWS = {row.name(): row for row in table.MODELS}


def test_table_lists_every_model_with_the_facts_counts():
    assert set(ROWS) == set(FACTS_PPO_PARAMS) | set(SAME_AS) | set(NATURE_VARIANTS)
    lines = {line.split("`")[1]: line for line in table.markdown().splitlines()[2:]}
    for name, line in lines.items():
        expected = FACTS_PPO_PARAMS.get(name) or NATURE_VARIANTS.get(name) or FACTS_PPO_PARAMS[SAME_AS[name]]
        counts = [cell.strip() for cell in line.split("|")[4:8]]
        assert counts == [f"{c:,}" for c in expected] + ["—"] * (4 - len(expected)), line


def test_readme_holds_the_generated_table():
    readme = (ROOT / "README.md").read_text()
    assert table.markdown() in readme, "README model table is stale: paste `python -m impoola.models.table`"


def test_dqn_has_257_fewer_parameters():
    for row in (ROWS["impoola_s2_stacked"], ROWS["impala_s2_4seq"], ROWS["nature_s2_avg"]):
        options = ModelOptions(scale=1, **row.model)
        with torch.device("meta"):
            ppo, dqn = build_agent("ppo", options, 15), build_agent("dqn", options, 15)
            assert count_parameters(ppo) - count_parameters(dqn) == 257


def test_model_names_and_flags():
    assert ModelOptions().model_name == "impoola_s2"
    assert ModelOptions(encoder="impala").model_name == "impala_s2"
    assert ModelOptions(encoder="nature", scale=1).model_name == "nature_s1"
    assert ModelOptions(encoder="impoola", pooling="max", pool_size=2).model_name == "impoola_s2_max_k2"
    assert ModelOptions(positional_encoding=True, pe_placement="last").model_name == "impoola_s2_pe_last"
    nature4 = ModelOptions(encoder="nature", extra_stage=True, cnn_filters=(8, 16, 16, 16))
    assert nature4.model_name == "nature_f8-16-16-16_4conv"
    assert BaselineOptions().suffix == ""
    assert ROWS["impala_s2_pruned_global"].flags() == "--encoder impala --pruning --pruning_mode global"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(encoder="nature", pooling="max"), "nature"),
        (dict(pooling="flatten", pool_size=2), "pool_size"),
        (dict(encoder="impala", pooling="softmoe", dropout=0.1), "dropout"),
        (dict(encoder="nature", extra_stage=True, cnn_filters=(8, 16, 16)), "cnn_filters"),
        (dict(encoder="nature", positional_encoding=True), "positional_encoding"),
        (dict(pooling="median"), "pooling"),
    ],
)
def test_invalid_combinations_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        ModelOptions(**options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(pruning=True, redo=True), "one baseline"),
        (dict(pruning_start=0.9), "pruning_start"),
        (dict(redo_every=0), "redo_every"),
        (dict(redo_mode="textbook"), "redo_mode 'textbook'; valid: dataflow, release, published"),
    ],
)
def test_invalid_baselines_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        BaselineOptions(**options)


@pytest.mark.parametrize("name", sorted(name for name, row in ROWS.items() if not row.baseline))
def test_output_shapes_for_every_variant_and_scale(name):
    obs = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    for scale in ROWS[name].scales:
        options = ModelOptions(scale=scale, **ROWS[name].model)
        agent = build_agent("ppo", options, 15)
        logits, value = agent(obs)
        assert logits.shape == (2, 15) and value.shape == (2, 1)
        assert agent.actor.in_features == (64 * 256 if options.pooling == "softmoe" else 256)
    assert build_agent("dqn", ModelOptions(scale=1, **ROWS[name].model), 15)(obs).shape == (2, 15)


@pytest.mark.parametrize("placement", PE_PLACEMENTS)
def test_positional_encoding_placements(placement):
    torch.manual_seed(0)
    plain = build_agent("ppo", ModelOptions(scale=1), 15)
    agent = build_agent("ppo", ModelOptions(scale=1, positional_encoding=True, pe_placement=placement), 15)
    assert agent.state_dict().keys() == plain.state_dict().keys()
    agent.load_state_dict(plain.state_dict())
    encodings = [m for m in agent.modules() if isinstance(m, PositionalEncoding)]
    assert len(encodings) == (1 if placement in ("first", "last") else 3)
    assert [type(m).__name__ for m in agent.encoder.network] == [type(m).__name__ for m in plain.encoder.network]
    for module in encodings:
        assert module.encoding.min() == 0 and math.isclose(float(module.encoding.max()), 0.1, rel_tol=1e-6)
    obs = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert not torch.allclose(agent.encoder(obs), plain.encoder(obs))


def test_default_models_keep_their_structure():
    for encoder in ("impala", "impoola", "nature"):
        agent = build_agent("ppo", ModelOptions(encoder=encoder, scale=1), 15)
        assert not any(isinstance(m, (nn.Dropout, PositionalEncoding)) for m in agent.modules())
    nature_gap = build_agent("ppo", ModelOptions(encoder="nature", scale=1, pooling="avg"), 15).encoder.network
    assert [type(m).__name__ for m in nature_gap[4:8]] == ["Conv2d", "AdaptiveAvgPool2d", "ReLU", "Flatten"]


def test_softmoe_routing():
    torch.manual_seed(0)
    moe = SoftMoE(dim=32, num_tokens=64)
    assert moe.slots == 7 and moe.phi.shape == (32, 70) and len(moe.experts) == 10
    tokens = torch.relu(torch.randn(3, 64, 32))
    dispatch, combine = moe.routing(tokens)
    assert torch.allclose(dispatch.sum(1), torch.ones(3, 70), atol=1e-6)
    assert torch.allclose(combine.sum(2), torch.ones(3, 64), atol=1e-6)
    out = moe(tokens.transpose(1, 2).reshape(3, 32, 8, 8))
    assert out.shape == (3, 64 * 256) and out.min() >= 0


def test_softmoe_phi_is_a_normal_clamped_at_two_std():
    """The release draws φ ~ Normal(0, σ), σ = √(1/10), and clamps it to ±2σ. By hand, for Z ~ Normal(0, 1):
    P(|Z| > 2) = 2(1 − Φ(2)) = 0.04550 of the entries sit on the bounds, and the clamped std is
    σ·√((2Φ(2) − 1) − 4φ(2) + 4·0.04550) = 0.95945σ; a truncated normal would give 0 and 0.87963σ."""
    torch.manual_seed(0)
    std = math.sqrt(0.1)
    phi = SoftMoE(dim=2048, num_tokens=64).phi.detach().flatten()  # 143,360 draws
    bound = torch.tensor(2 * std, dtype=phi.dtype)
    assert torch.equal(phi.abs().max(), bound)
    on_bounds = float((phi.abs() == bound).double().mean())
    assert abs(on_bounds - 0.04550) < 0.003  # binomial sd 0.00055
    assert abs(float(phi.double().std()) - 0.95945 * std) < 0.01 * std  # sampling sd about 0.002σ
    assert abs(float((phi.abs() < std).double().mean()) - 0.68269) < 0.006  # the interior stays normal


@pytest.mark.parametrize("name", sorted(ROWS))
def test_one_tiny_ppo_iteration_for_every_model(name, tmp_path):
    from ppo_training import main

    row = ROWS[name]
    baseline = {**row.baseline, "redo_every": 1} if row.baseline.get("redo") else row.baseline
    total_timesteps = 32 if row.baseline.get("pruning") else 16  # pruning starts at the end of iteration 2
    args = tiny_ppo_args(tmp_path, num_steps=8, total_timesteps=total_timesteps, num_eval_episodes=0,
                         num_final_eval_episodes=0, **row.model, **baseline)
    main(args)
    run_dir = tmp_path / f"bigfish__ppo__{row.name(1)}__s1"
    assert (run_dir / "done").exists()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if row.baseline.get("pruning"):
        assert [m["charts/sparsity"] for m in metrics if "charts/sparsity" in m][-1] == pytest.approx(0.9, abs=0.01)
    if row.baseline.get("redo"):
        redo = [m for m in metrics if "charts/redo_dormant_units" in m]
        assert redo and all(m["charts/redo_reset_units"] <= m["charts/redo_dormant_units"] for m in redo)
        if row.baseline.get("redo_mode") == "published":
            assert all(m["charts/redo_reset_units"] == 0 for m in redo)
