"""The shipped knowledge file, park overrides, and the errors a bad file gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.knowledge import DEFAULT_KNOWLEDGE, KnowledgeError, load_knowledge, parse_knowledge


@pytest.fixture(scope="module")
def default_text() -> str:
    return DEFAULT_KNOWLEDGE.read_text(encoding="utf-8")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_default_loads_with_every_figure_sourced() -> None:
    k = load_knowledge()
    ids = {s.id for s in k.sources}
    cited = [p.source for p in k.prices] + [c.source for c in k.disposal_costs]
    cited += [e.source for e in k.resource_emissions] + [e.source for e in k.disposal_emissions]
    cited += [m.source for m in k.transport_modes] + [r.source for r in k.rules]
    cited += [h.source for h in k.heating_values]
    assert set(cited) <= ids
    # every placeholder says it is one and how to replace it
    assumptions = [s for s in k.sources if s.assumption]
    assert assumptions and all(s.note and s.accessed for s in assumptions)
    # the figures that have no published source are marked as assumptions
    for resource in ("energy.electricity", "energy.natural_gas", "material.cement"):
        price = k.price(resource)
        assert price is not None and k.source(price.source).assumption
    assert k.source(k.mode("truck").source).assumption


def test_published_figures_match_the_reference() -> None:
    k = load_knowledge()
    water = k.price("water.potable")
    # water by province; a park naming none gets the stated default (an assumption)
    water = k.price("water.potable", "Ho Chi Minh City")
    assert water is not None and water.vnd_per_unit == 12100
    assert not k.source(water.source).assumption
    dong_nai = k.price("water.potable", " dong  NAI ")
    assert dong_nai is not None and dong_nai.vnd_per_unit == 11500
    for province in (None, "Atlantis"):
        default = k.price("water.potable", province)
        assert default is not None and k.source(default.source).assumption
    assert k.resource_emission("energy.electricity", 2019)[0] == pytest.approx(0.8458e-3)
    sewer = k.disposal_cost("sewer_to_wwtp", "water.wastewater")
    assert sewer is not None and sewer.vnd_per_unit == 6765
    # grid factor is kept by year, quoted per MWh and converted to per kWh
    assert k.resource_emission("energy.electricity", 2022)[0] == pytest.approx(0.6766e-3)
    assert k.resource_emission("energy.electricity", 2018)[0] == pytest.approx(0.9130e-3)
    # a year between published ones uses the latest not after it; later years the newest
    assert k.resource_emission("energy.electricity", 2020)[0] == pytest.approx(0.8041e-3)
    value, _, used = k.resource_emission("energy.electricity", 2026)
    assert value == pytest.approx(0.6592e-3) and used == 2023
    value, _, used = k.resource_emission("energy.electricity", 2010)
    assert value == pytest.approx(0.6612e-3) and used == 2014
    assert k.resource_emission("material.cement", 2026)[0] == pytest.approx(0.718)
    assert k.resource_emission("material.clinker", 2026)[0] == pytest.approx(0.897)
    assert k.resource_emission("water.potable", 2026) == (0.0, None, None)


def test_most_specific_disposal_entry_wins() -> None:
    k = load_knowledge()
    ash = k.disposal_emission("landfill", "waste.fly_ash")
    pallets = k.disposal_emission("landfill", "waste.wood_pallets")
    assert ash is not None and ash.per_unit == 0.0  # inert: no landfill methane
    assert pallets is not None and pallets.per_unit == pytest.approx(0.300)
    assert k.disposal_emission("vented", "energy.steam") is None
    assert k.disposal_cost(None, "waste.fly_ash") is None


def test_effluent_rule_gates_and_uses() -> None:
    k = load_knowledge()
    rule = next(r for r in k.active_rules() if r.id == "effluent_a_reuse")
    assert rule.uses is not None
    assert {"cooling_makeup", "irrigation", "cleaning"} <= set(rule.uses)
    assert not {"boiler_feed", "product_water"} & set(rule.uses)
    assert [(g.attribute, g.one_of) for g in rule.gates] == [("qcvn40_column", ["A"])]
    assert rule.coupling == "day"
    couplings = {r.id: r.coupling for r in k.active_rules()}
    assert couplings["steam_to_steam"] == "hour" and couplings["solar_to_neighbour"] == "hour"
    assert couplings["ash_slag_to_cement"] == "week"


def test_override_replaces_entries_by_key_and_merges_settings(tmp_path: Path) -> None:
    override = write(
        tmp_path,
        "park.yaml",
        """
sources:
  - {id: park-tariff-2026, citation: "Song Lam water tariff 2026"}
prices:
  - {resource: water.potable, vnd: 14500, per: m3, as_of: 2026-01-01, source: park-tariff-2026}
  - {resource: energy.electricity, vnd: 1.9, per: MWh, as_of: 2026-01-01, source: park-tariff-2026}
detection:
  min_present_share: 0.8
disable_rules: [scrap_plastic_to_recycler]
""",
    )
    k = load_knowledge(override=override)
    water = k.price("water.potable")
    assert water is not None and water.vnd_per_unit == 14500 and water.source == "park-tariff-2026"
    elec = k.price("energy.electricity")
    assert elec is not None and elec.vnd_per_unit == pytest.approx(0.0019)
    assert k.detection.min_present_share == 0.8
    # the rest of the detection block is kept from the default
    assert k.detection.min_p50("water.treated_effluent") == 5
    assert "scrap_plastic_to_recycler" not in {r.id for r in k.active_rules()}
    assert len([p for p in k.prices if p.resource == "water.potable" and not p.province]) == 1
    # nothing else changed
    assert k.price("energy.lpg") == load_knowledge().price("energy.lpg")


def test_override_can_add_a_rule(tmp_path: Path) -> None:
    override = write(
        tmp_path,
        "park.yaml",
        """
rules:
  - id: sludge_to_brick
    description: Dried sludge as brick clay additive
    supply: [waste.sludge]
    demand: [material.clay]
    max_demand_share: 0.1
    coupling: week
    transport: truck
    max_distance_m: 20000
    source: assume-conversion-2026
""",
    )
    k = load_knowledge(override=override)
    assert k.active_rules()[-1].id == "sludge_to_brick"
    assert len(k.active_rules()) == len(load_knowledge().active_rules()) + 1


@pytest.mark.parametrize(
    ("override", "where", "reason"),
    [
        (
            "rules:\n  - {id: x, description: d, supply: [waste.sludge], demand: [material.clay],"
            " coupling: week, transport: truck, max_distance_m: 10, source: s, colour: red}",
            "rules[13] ('x').colour",
            "unknown key",
        ),
        (
            "rules:\n  - {id: x, description: d, supply: [waste.sludge], demand: [material.clay],"
            " coupling: week, transport: truck, max_distance_m: 10, source: nowhere}",
            "rules[13] ('x').source",
            "source 'nowhere' is not in sources",
        ),
        (
            "rules:\n  - {id: x, description: d, supply: [waste.sludge], demand: [material.clay],"
            " coupling: week, transport: water_pipe, max_distance_m: 10, source: ref-qcvn40}",
            "rules[13] ('x').transport",
            "moves m3, the supply is in t",
        ),
        (
            "rules:\n  - {id: x, description: d, supply: [waste.sludge], demand: [material.clay],"
            " coupling: fortnight, transport: truck, max_distance_m: 10, source: ref-qcvn40}",
            "rules[13] ('x').coupling",
            "Input should be 'hour', 'day', 'week' or 'month'",
        ),
        (
            "prices:\n  - {resource: water.potable, vnd: 100, per: kg, as_of: 2026-01-01,"
            " source: ref-qcvn40}",
            "prices[0] ('water.potable')",
            "per 'kg' does not fit 'water.potable'",
        ),
        (
            "sources:\n  - {id: guess, citation: c, assumption: true}",
            "sources[",
            "an assumption needs a note",
        ),
        ("disable_rules: [no_such_rule]", "disable_rules[0]", "rule 'no_such_rule' is unknown"),
        (
            "destinations:\n  - {id: vented, verb: vents}",
            "destinations[6] ('vented')",
            "verb needs exactly one {what}",
        ),
        (
            "transport_modes:\n  - {id: truck, label: t, family: waste, vnd_per_unit_km: 1,"
            " loss_per_km: 1.5, as_of: 2026-01-01, source: ref-qcvn40}",
            "transport_modes[0] ('truck').loss_per_km",
            "less than 1",
        ),
        (
            "rules:\n  - id: x\n    description: d\n    supply: [waste.sludge]\n    demand: [material.clay]\n"
            "    coupling: week\n    transport: truck\n    max_distance_m: 10\n    source: ref-qcvn40\n"
            "    gates: [{attribute: qcvn40_column, at_least: 3}]",
            "rules[13] ('x').gates[0]",
            "qcvn40_column, wood_treatment take one_of",
        ),
    ],
)
def test_override_errors_name_file_entry_and_reason(
    tmp_path: Path, override: str, where: str, reason: str
) -> None:
    path = write(tmp_path, "songlam-knowledge.yaml", override)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(override=path)
    assert any(p.startswith(f"{path}: {where}") and reason in p for p in info.value.problems), (
        info.value.problems
    )


def test_error_in_the_base_file_names_the_base_file(tmp_path: Path, default_text: str) -> None:
    base = write(tmp_path, "base.yaml", default_text.replace("vnd: 12100", "vnd: -5", 1))
    over = write(tmp_path, "park.yaml", "detection: {min_present_share: 0.7}\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(base, override=over)
    assert any(
        p.startswith(f"{base}: prices[0] ('water.potable').vnd") for p in info.value.problems
    ), info.value.problems
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(override=write(tmp_path, "bad.yaml", "detection: {min_present_share: 2}\n"))
    assert any("bad.yaml: detection.min_present_share" in p for p in info.value.problems)


def test_yaml_syntax_and_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge("rules: [\n", "k.yaml")
    assert info.value.problems[0].startswith("k.yaml: line ")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(override=write(tmp_path, "list.yaml", "- a\n- b\n"))
    assert "top level must be a mapping" in info.value.problems[0]
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(str(tmp_path / "missing.yaml"))
    assert "cannot read" in info.value.problems[0]


def test_duplicate_keys_in_one_file_are_reported(default_text: str) -> None:
    text = default_text.replace(
        "prices:\n",
        "prices:\n  - {resource: water.potable, vnd: 1, per: m3, as_of: 2026-01-01,"
        " source: ref-qcvn40}\n",
        1,
    )
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge(text, "k.yaml")
    assert any("'water.potable' is listed twice" in p for p in info.value.problems)


def test_every_shipped_rule_carries_its_legal_screen() -> None:
    """Viet Nam first: each exchange type with what the law asks, sourced and dated."""
    k = load_knowledge()
    status = {r.id: r.legal.status for r in k.rules if r.legal is not None}
    assert status == {
        "effluent_a_reuse": "conditional",  # contract or permit terms; QCVN 40 is for discharge
        "steam_to_steam": "allowed",
        "waste_heat_to_steam": "allowed",
        "waste_heat_to_fuel": "allowed",
        "ash_slag_to_cement": "conditional",  # TCVN 10302:2014, Decision 452
        "pallets_to_biomass_fuel": "conditional",  # untreated wood, LEP 2020 Art. 81-82
        "scrap_plastic_to_recycler": "conditional",
        "solar_to_neighbour": "permit",  # Decree 57/2025 direct power purchase
        "waste_paper_to_paper_mill": "conditional",
        "biogas_to_boiler_fuel": "conditional",
        "fgd_gypsum_to_plasterboard": "conditional",  # Decision 452/QD-TTg
        "sludge_to_fertiliser": "permit",  # QCVN 50:2013 thresholds, fertiliser registration
        "waste_heat_to_hot_water": "allowed",
    }
    solar = next(r for r in k.rules if r.id == "solar_to_neighbour")
    assert solar.legal is not None and "ref-decree-57-2025" in solar.legal.sources
    # the legal figure with no published basis says it is an assumption
    steam = next(r for r in k.rules if r.id == "steam_to_steam")
    assert steam.legal is not None
    assert all(k.source(s).assumption for s in steam.legal.sources)


def test_a_legal_screen_citing_an_unknown_source_is_refused(default_text: str) -> None:
    text = default_text.replace("sources: [ref-decree-57-2025]", "sources: [ref-decree-99]")
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge(text, "k.yaml")
    assert any("legal.sources[0]" in p and "ref-decree-99" in p for p in info.value.problems)


@pytest.mark.parametrize(
    ("weekday", "hour", "weights"),
    [
        (0, 9, (0.0, 0.5, 0.5)),  # peak starts 09:30
        (0, 10, (0.0, 0.0, 1.0)),
        (5, 11, (0.0, 0.5, 0.5)),  # Saturday keeps the peak; it ends 11:30
        (2, 17, (0.0, 0.0, 1.0)),
        (6, 10, (0.0, 1.0, 0.0)),  # no peak on Sunday
        (6, 23, (1.0, 0.0, 0.0)),
        (3, 3, (1.0, 0.0, 0.0)),
        (3, 4, (0.0, 1.0, 0.0)),
    ],
)
def test_time_of_use_bands_by_local_hour(
    weekday: int, hour: int, weights: tuple[float, float, float]
) -> None:
    tou = load_knowledge().time_of_use
    assert tou is not None and tou.band_weights(weekday, hour) == weights


def test_production_tariffs_by_voltage() -> None:
    k = load_knowledge()
    assert k.tariff("energy.electricity", "6-22kV") is not None
    low = k.tariff("energy.electricity", "<6kV")
    assert low is not None and low.per_unit() == (1300, 1987, 3640)
    default = k.tariff("energy.electricity", None)
    assert default is not None and default.voltage == "22-110kV"
    assert k.tariff("water.potable", None) is None


def test_a_tariff_without_every_band_is_refused(default_text: str) -> None:
    text = default_text.replace(
        "bands: {normal: 1899, off_peak: 1234, peak: 3508}", "bands: {normal: 1899}"
    )
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge(text, "k.yaml")
    assert any("bands needs a price for off_peak, peak" in p for p in info.value.problems)
