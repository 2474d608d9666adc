"""benchmark_utils.validate: the published settings, the smoothed return, the comparison with the published band
(synthetic curves inside, below and above it), bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ppo_training
from benchmark_utils import validate
from impoola.cli import parse_cli
from impoola.envs.games import level_range
from impoola.options import flat_options, replace_flat
from support.runs import tiny_ppo_args


# Cobbe et al. (2020) / openai/train-procgen, as listed in issues 17 and 23 (train-procgen's README).
PUBLISHED = {
    "maxpool_padding": "same", "encoder_init": "glorot", "adam_eps_form": "tf", "reward_norm_gamma": 0.99,
    "encoder": "impala", "scale": 1.0, "pooling": "flatten", "distribution_mode": "easy", "track": "generalization",
    "gamma": 0.999, "gae_lambda": 0.95, "scale_lr": False, "anneal_lr": False, "num_envs": 64, "num_steps": 256,
    "num_minibatches": 8, "update_epochs": 3, "norm_adv": True, "clip_coef": 0.2, "clip_vloss": True,
    "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "target_kl": None, "normalize_reward": True,
    "reward_clip": 10.0, "pool_size": 1, "extra_stage": False, "positional_encoding": False, "dropout": 0.0,
    "cnn_filters": None, "pruning": False, "redo": False,
}


def published_args() -> ppo_training.Args:
    return parse_cli(ppo_training.Args, [*validate.PUBLISHED_FLAGS, "--env_id", "fruitbot"], "ppo")


def run_config(args: ppo_training.Args) -> dict:
    """config.json as ppo_training.main writes it (the keys the comparison reads)."""
    return {**flat_options(args), "base_learning_rate": ppo_training.base_learning_rate(args),
            "model_name": args.model_name, "num_iterations": args.total_timesteps // (args.num_envs * args.num_steps),
            "batch_size": args.num_envs * args.num_steps, "device": "cpu"}


def test_published_flags_resolve_to_the_published_settings():
    args = published_args()
    flat = flat_options(args)
    assert {key: flat[key] for key in PUBLISHED} == PUBLISHED
    assert ppo_training.base_learning_rate(args) == 5e-4  # not rescaled by 2/τ
    assert args.model.resolved_pooling() == "flatten" and args.model_name == "impala_s1_samepool_glorot"
    assert level_range(args.env.track, args.env.distribution_mode, "train") == (0, 200)
    assert validate.deviations(run_config(args)) == []


def test_runs_are_named_as_the_training_script_names_them():
    assert validate.run_name(validate.Args(env_id="fruitbot"), 1) == \
        "fruitbot__train_procgen__impala_s1_samepool_glorot__s1"
    changed = validate.Args(env_id="coinrun", train_flags="--scale 2")
    assert validate.run_name(changed, 3) == "coinrun__train_procgen__impala_s2_samepool_glorot__s3"
    before = validate.Args(env_id="fruitbot", preset="train-procgen-torch")  # the name runs of the old preset have
    assert validate.run_name(before, 1) == "fruitbot__train_procgen__impala_s1__s1"
    assert validate.training_command(before, 1)[2:4] == ["--preset", "train-procgen-torch"]


def test_the_preset_before_its_correction_is_reported_with_its_four_differences():
    args = parse_cli(ppo_training.Args, ["--preset", "train-procgen-torch", "--env_id", "fruitbot"], "ppo")
    assert validate.deviations(run_config(args)) == [
        "adam_eps_form=torch (published tf)", "reward_norm_gamma=0.999 (published 0.99)",
        "encoder_init=torch (published glorot)", "maxpool_padding=symmetric (published same)"]
    old_run = {key: value for key, value in run_config(args).items()  # config.json of a run older than the options
               if key not in ("adam_eps_form", "reward_norm_gamma", "encoder_init", "maxpool_padding")}
    assert validate.deviations(old_run) == validate.deviations(run_config(args))


def test_every_changed_setting_is_reported():
    args = replace_flat(published_args(), gamma=0.99, scale_lr=True, clip_vloss=False, track="efficiency")
    found = validate.deviations(run_config(args))
    assert found == ["num_levels=0 (published 200)", "learning_rate=0.001 (published 0.0005)",
                     "gamma=0.99 (published 0.999)", "clip_vloss=False (published True)"]


def test_the_smoothed_return_is_the_mean_of_the_last_episodes(tmp_path, monkeypatch):
    """charts/episodic_return_last100 equals the mean of the last RECENT_EPISODES returns the env reported."""
    finished: list[list[float]] = []  # per vector step: the returns of the episodes that ended there
    original = ppo_training.ProcgenVecEnv.step

    def step(self, actions):
        out = original(self, actions)
        done = out[2] | out[3]
        finished.append(out[4]["episode_return"][done].tolist())
        return out

    monkeypatch.setattr(ppo_training.ProcgenVecEnv, "step", step)
    monkeypatch.setattr(ppo_training, "RECENT_EPISODES", 5)  # a window that the run's ~25 episodes overflow
    args = tiny_ppo_args(tmp_path, env_id="bossfight", num_envs=4, num_steps=32, total_timesteps=512,
                         num_eval_episodes=0, num_final_eval_episodes=0, capture_video=False, run_name="run")
    ppo_training.main(args)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [(row["global_step"], row[validate.SMOOTHED_RETURN]) for row in rows if validate.SMOOTHED_RETURN in row]
    assert len(logged) >= 3
    for global_step, value in logged:
        returns = [r for returns in finished[:global_step // args.num_envs] for r in returns]
        assert value == pytest.approx(np.mean(returns[-5:]))
    assert sum(map(len, finished)) > 5  # the window was overflowed


def reference() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Three synthetic published runs logged every 100 steps: 0, 1 and 2 above a line rising by 1 per 100 steps."""
    steps = np.arange(100.0, 1001.0, 100.0)
    return {run: (steps, steps / 100 + run) for run in range(3)}


def curve(name: str, steps, returns) -> validate.RunCurve:
    return validate.RunCurve(name, np.asarray(steps, float), np.asarray(returns, float), {})


def test_band_interpolates_each_run_then_takes_min_mean_max():
    band = validate.Band.at(reference(), np.array([150.0, 1000.0]))
    np.testing.assert_allclose(band.low, [1.5, 10])
    np.testing.assert_allclose(band.mean, [2.5, 11])
    np.testing.assert_allclose(band.high, [3.5, 12])


def test_verdicts_inside_below_above_on_synthetic_curves():
    steps = np.arange(50.0, 451.0, 50.0)  # logged more often than the reference, from before its first step
    runs = [curve("inside", steps, steps / 100 + 1), curve("below", steps, steps / 100 - 0.5),
            curve("above", steps, steps / 100 + 2.5), curve("crossing", steps, np.where(steps < 300, 0, 99))]
    comparison = validate.compare(runs, reference())
    np.testing.assert_array_equal(comparison.band.steps, [100, 200, 300, 400])  # published steps we reached
    assert comparison.verdicts == {
        "inside": ["inside the band"] * 4, "below": ["below"] * 4, "above": ["above"] * 4,
        "crossing": ["below", "below", "above", "above"],
    }
    assert validate.verdict(3.0, 3.0, 5.0) == validate.verdict(5.0, 3.0, 5.0) == "inside the band"  # edges
    table = validate.format_table(comparison).splitlines()
    assert table[0].split()[:4] == ["step", "ref", "min", "ref"]
    assert table[2].split() == ["200", "2.00", "3.00", "4.00", "3.00", "inside", "the", "band", "1.50", "below",
                                "4.50", "above", "0.00", "below"]
    assert validate.summary_lines(comparison)[3] == "crossing: 0 of 4 steps inside the band (2 below, 2 above)"


def test_a_run_ending_before_the_first_published_step_is_compared_at_its_own_steps():
    comparison = validate.compare([curve("short", [20, 40, 60], [0, 1, 2])], reference())
    np.testing.assert_array_equal(comparison.band.steps, [20, 40, 60])
    assert comparison.verdicts["short"] == ["below", "inside the band", "inside the band"]  # band clamped at 1..3


def write_partial_run(run_dir: Path, steps: np.ndarray, returns: np.ndarray) -> None:
    """A published-settings run stopped part way: config.json, metrics rows, a half-written last line, no done."""
    run_dir.mkdir(parents=True)
    args = published_args()
    args = replace_flat(args, precision="bf16", total_timesteps=2_000_000)
    (run_dir / "config.json").write_text(json.dumps(run_config(args)))
    rows = [{"global_step": 0, "charts/SPS": None}]
    rows += [{"global_step": int(s), validate.SMOOTHED_RETURN: float(r), "charts/elapsed_train_time": s / 100}
             for s, r in zip(steps, returns)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"global_st')


def test_compare_only_a_partial_run_against_the_real_published_band(tmp_path, capsys):
    published = validate.published_runs("fruitbot", "train")
    steps = np.arange(1, 13) * validate.STEPS_PER_UPDATE  # iterations 1..12 of the published settings
    band = validate.Band.at(published, steps)
    wanted = np.where(steps < 100_000, band.mean, np.where(steps < 150_000, band.low - 1, band.high + 1))
    write_partial_run(tmp_path / "run", steps, wanted)
    figure = tmp_path / "fig" / "v.png"
    text = validate.main(parse_cli(validate.Args, ["--compare_only", str(tmp_path / "run"), "--figure", str(figure)]))
    assert text == capsys.readouterr().out.rstrip("\n")
    assert "run: 196,608 of 1,998,848 steps (stopped part way), 32.8 min of training" in text
    assert "precision bf16" in text and "settings are the published ones" in text
    rows = {line.split()[0]: line for line in text.splitlines()
            if line.strip() and line.split()[0].replace(",", "").isdigit()}
    assert rows["16,384"].endswith("inside the band") and rows["81,920"].endswith("inside the band")
    assert rows["147,456"].endswith("below")  # published steps 16,384 + k * 65,536 inside the run
    assert "run: 2 of 3 steps inside the band (1 below, 0 above)" in text
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--total_timesteps", "1.5"], "invalid integer '1.5'"),
    (["--num_seeds", "0"], "invalid num_seeds 0"),
    (["--train_flags=--seed 3"], "invalid train_flags '--seed 3': --seed is set by this command"),
    (["--train_flags=--precision=bf16"], "--precision is set by this command"),
    (["--compare_only", "no/such/run"], "invalid compare_only 'no/such/run'"),
    (["--env_id", "pong"], "invalid env_id 'pong'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        validate.main(parse_cli(validate.Args, [*argv, "--output_dir", str(tmp_path / "out")]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def write_diagnostic_run(run_dir: Path, values: dict[str, np.ndarray]) -> None:
    """A published-settings run of len(values) updates whose diagnostics are `values` (our metric key -> array)."""
    updates = len(next(iter(values.values())))
    steps = np.arange(1, updates + 1) * validate.STEPS_PER_UPDATE
    write_partial_run(run_dir, steps, np.zeros(updates))
    rows = [{"global_step": 0, "charts/SPS": None}]  # the first row holds the network statistics: no update
    rows += [{"global_step": int(step), validate.SMOOTHED_RETURN: 0.0,
              **{key: float(column[i]) for key, column in values.items()}} for i, step in enumerate(steps)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def published_diagnostics(run: int, updates: int = 12) -> dict[str, np.ndarray]:
    """Published run `run` of fruitbot, updates 1..`updates`, under our metric keys."""
    from impoola.reference_curves import diagnostics

    table = diagnostics("fruitbot")
    table = table[(table["run"] == run) & (table["update"] <= updates)].sort_values("update")
    return {key: table[column].to_numpy(float) for column, key, _ in validate.DIAGNOSTICS}


def test_diagnostics_verdicts_per_metric_and_update_and_the_summary(tmp_path):
    """Published run 1's own values lie in the band; shifting value loss below it and clipfrac above it after
    update 6 shows in the tables, the per-metric lines and the summary."""
    inside = published_diagnostics(1)
    write_diagnostic_run(tmp_path / "inside", inside)
    shifted = dict(inside)
    shifted["losses/value_loss"] = inside["losses/value_loss"] * 0.5
    shifted["losses/clipfrac"] = np.where(np.arange(12) >= 6, 0.5, inside["losses/clipfrac"])
    shifted["losses/entropy"] = inside["losses/entropy"] + np.where(np.arange(12) % 4 == 0, 1.0, 0.0)  # 3 above
    del shifted["losses/approx_kl_baselines"]  # a run of a version that did not log baselines' estimator
    write_diagnostic_run(tmp_path / "shifted", shifted)
    runs = [validate.read_run(tmp_path / "inside"), validate.read_run(tmp_path / "shifted")]
    lines = validate.diagnostics_report(runs, "fruitbot", 12)
    text = "\n".join(lines)
    assert lines[0].startswith("fruitbot: per-update diagnostics")
    value_rows = text[text.index("value loss (ours: losses/value_loss)"):].splitlines()[2:14]
    assert [row.split()[0] for row in value_rows] == [str(u) for u in range(1, 13)]
    assert all(row.split()[4:] == ["inside", "the", "band"] + [row.split()[7], "below"] for row in value_rows)
    assert "value loss, inside: inside the band at 12 of 12 updates; inside from update 1 on" in lines
    assert ("clipfrac, shifted: inside the band at 6 of 12 updates (above at updates 7, 8, 9, 10, 11, 12); "
            "outside at the last update") in lines
    assert "approx-KL, shifted: not logged (a run of a version without losses/approx_kl_baselines)" in lines
    # 12 of 24 run-updates below: P = 0.007 for a run like the published ones; 6 above (P = 0.54) and 3 above
    # (P = 0.96) are what such a run gives.
    assert lines[-1].startswith("summary, updates 1-12: the early dynamics match on clipfrac, entropy, approx-KL, "
                                "explained variance, episode length; they differ on value loss (below at 12 of "
                                "24 run-updates)")
    assert validate.side_tail(12, 24) == pytest.approx(0.0075, abs=5e-4)


def test_a_run_like_the_published_ones_is_inside_at_half_the_updates():
    """Exchangeability: a 4th run drawn like the 3 published ones lands inside their min-max with probability 1/2,
    below and above with 1/4 each; the side rule does not call such runs different (simulated, 2 runs x 12 updates)."""
    rng = np.random.default_rng(0)

    def flagged(shift: float) -> float:
        count = 0
        for _ in range(2000):
            draws = rng.standard_normal((12, 5))  # 3 published runs and 2 of ours per update
            low, high = draws[:, :3].min(1), draws[:, :3].max(1)
            ours = {f"run{k}": draws[:, 3 + k] + shift for k in range(2)}
            count += not validate.MetricComparison("m", "k", np.arange(1, 13), low, high, ours).matches()
        return count / 2000

    assert flagged(0.0) < 0.03  # two sides at p < 0.01 each
    assert flagged(1.5) > 0.9  # runs shifted by 1.5 standard deviations are told apart


def test_diagnostics_stop_at_the_last_update_every_run_reached(tmp_path):
    write_diagnostic_run(tmp_path / "a", published_diagnostics(0, 5))
    write_diagnostic_run(tmp_path / "b", published_diagnostics(2, 3))
    from impoola.reference_curves import diagnostics

    runs = [validate.read_run(tmp_path / "a"), validate.read_run(tmp_path / "b")]
    comparisons = validate.compare_diagnostics(runs, diagnostics("fruitbot"), 12)
    assert [list(c.updates) for c in comparisons] == [[1, 2, 3]] * len(validate.DIAGNOSTICS)
    assert all(c.matches() for c in comparisons)


def test_past_one_block_the_summary_says_in_which_blocks_a_metric_parts(tmp_path):
    """40 updates of published run 1 (inside the band), with value loss halved from update 17 on: the block lines
    say value loss matches in 1-16 and falls below in 17-32 and 33-40, the other metrics match in every block."""
    values = published_diagnostics(1, 40)
    values["losses/value_loss"] = np.where(np.arange(40) >= 16, 0.5, 1.0) * values["losses/value_loss"]
    write_diagnostic_run(tmp_path / "run", values)
    lines = validate.diagnostics_report([validate.read_run(tmp_path / "run")], "fruitbot", 40)
    assert ("value loss by 16 updates: 1-16 match, 17-32 below at 16 of 16 run-updates, "
            "33-40 below at 8 of 8 run-updates") in lines
    assert "clipfrac by 16 updates: 1-16 match, 17-32 match, 33-40 match" in lines
    assert lines[-1].startswith("summary, updates 1-40: the dynamics match on clipfrac, entropy, approx-KL, ")
    short = validate.diagnostics_report([validate.read_run(tmp_path / "run")], "fruitbot", 16)
    assert not any(" by 16 updates: " in line for line in short)  # one block: the summary line says it all
