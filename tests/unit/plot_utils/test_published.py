"""The paper's Figure 1 points: the table drawn from them, and parameter counts equal to the models built here."""

from __future__ import annotations

import pytest

from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent
from plot_utils.published import PARAM_COUNTS, PUBLISHED_IQM, READ_OFF_ERROR, figure1_table


def test_the_table_has_one_row_per_published_point_with_its_read_off_band():
    table = figure1_table()
    assert len(table) == sum(len(points) for points in PUBLISHED_IQM.values())
    row = table[(table.family == "impoola") & (table.scale == 2)].iloc[0]
    assert row.params == PARAM_COUNTS["impoola"][2]
    assert row.lower == pytest.approx(row.iqm - READ_OFF_ERROR) and row.upper == pytest.approx(row.iqm + READ_OFF_ERROR)
    assert (table.lower < table.iqm).all() and (table.iqm < table.upper).all()


@pytest.mark.parametrize(("family", "scale"), [(family, scale) for family, per_scale in PUBLISHED_IQM.items()
                                               for scale in per_scale])
def test_each_published_point_is_placed_at_the_parameter_count_of_the_model_built_here(family, scale):
    agent = build_agent("ppo", ModelOptions(encoder=family, scale=scale), 15)
    assert sum(p.numel() for p in agent.parameters()) == PARAM_COUNTS[family][scale]
