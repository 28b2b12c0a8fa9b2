"""The pages' own small rules: alert counts by kind, a park's share of the plan, the order
a move form offers its stages in. Pure."""

from __future__ import annotations

from service.exchanges.pipeline import Stage
from service.web.pages import KindCount, alert_counts, next_stages, park_share


def test_alerts_are_counted_by_kind_open_and_acknowledged_apart() -> None:
    alerts = [
        {"kind": "opportunity", "status": "open"},
        {"kind": "opportunity", "status": "open"},
        {"kind": "opportunity", "status": "acknowledged"},
        {"kind": "meter_stale", "status": "acknowledged"},
        {"kind": "surplus", "status": "open"},
    ]
    assert alert_counts(alerts) == [
        KindCount("opportunity", 2, 1),
        KindCount("surplus", 1, 0),
        KindCount("meter_stale", 0, 1),
    ]


def test_a_parks_share_of_the_plan_is_the_sum_of_its_links() -> None:
    links = [
        {
            "park_vnd_per_year": 1_000_000_000,
            "co2e_avoided_t_per_year": 12.5,
            "water_saved_m3_per_year": 3_650.0,
            "landfill_diverted_t_per_year": 0.0,
        },
        {
            "park_vnd_per_year": 250_000_000,
            "co2e_avoided_t_per_year": 0.5,
            "water_saved_m3_per_year": 0.0,
            "landfill_diverted_t_per_year": 40.0,
        },
    ]
    assert park_share(links) == {
        "park_vnd_per_year": 1_250_000_000,
        "co2e_avoided_t_per_year": 13.0,
        "water_saved_m3_per_year": 3_650.0,
        "landfill_diverted_t_per_year": 40.0,
        "n_links": 2,
    }
    assert park_share([])["n_links"] == 0


def test_a_move_offers_the_next_forward_stage_first_and_the_way_out_last() -> None:
    assert next_stages(Stage.IDENTIFIED) == ["screened", "rejected"]
    assert next_stages(Stage.SCREENED) == ["under_study", "identified", "rejected"]
    assert next_stages(Stage.OPERATING) == ["verified", "ended"]
    assert next_stages(Stage.VERIFIED) == ["operating", "ended"]
    assert next_stages(Stage.REJECTED) == ["identified"]
    assert next_stages(Stage.ENDED) == []
