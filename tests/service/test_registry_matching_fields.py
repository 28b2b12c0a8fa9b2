"""Registry fields that matching needs: locations, uses, quality, destinations, exchanges, capex."""

from __future__ import annotations

from datetime import date

import pytest

from parkflow.errors import RegistryError
from parkflow.registry import SAMPLE_REGISTRY, load_registry, parse_registry

BASE = """
version: 1
parks:
  - id: p
    name: P
    tenants:
      - id: a
        name: A
        {a_extra}
        meters:
          - {{id: a-out, resource: water.treated_effluent, direction: out, unit: m3, kind: delta{out_extra}}}
          - {{id: a-in, resource: water.potable, direction: in, unit: m3, kind: delta{in_extra}}}
      - id: b
        name: B
        meters:
          - {{id: b-in, resource: water.potable, direction: in, unit: m3, kind: delta{b_extra}}}
{park_extra}
"""


def registry_text(
    a_extra: str = "",
    out_extra: str = "",
    in_extra: str = "",
    b_extra: str = "",
    park_extra: str = "",
) -> str:
    return BASE.format(
        a_extra=a_extra,
        out_extra=out_extra,
        in_extra=in_extra,
        b_extra=b_extra,
        park_extra=park_extra,
    )


def problems(text: str) -> list[str]:
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "park.yaml")
    return info.value.problems


def test_registry_without_matching_fields_still_loads() -> None:
    reg = parse_registry(registry_text())
    park = reg.parks["p"]
    assert park.exchanges == [] and park.link_capex == []
    assert park.tenants[0].location is None
    meter = reg.meter("p", "a", "a-in")
    assert meter is not None and meter.meter.uses is None and meter.meter.use_shares() == {}


def test_all_fields_parse() -> None:
    reg = parse_registry(
        registry_text(
            a_extra="location: {x_m: 10, y_m: -20.5}",
            out_extra=", quality: {qcvn40_column: A, temperature_c: 31}, destination: discharged,"
            " destination_vnd_per_unit: 0, storage: day",
            b_extra=", uses: [{name: cooling_makeup, share: 0.25}, {name: cleaning}, {name: domestic}]",
            park_extra="""    exchanges:
      - {from_meter: a-out, to_meter: b-in, share: 0.5, since: 2024-06-01}
    link_capex:
      - {from_meter: a-out, to_meter: b-in, capex_vnd: 1200000000}""",
        )
    )
    park = reg.parks["p"]
    assert park.tenants[0].location is not None
    assert (park.tenants[0].location.x_m, park.tenants[0].location.y_m) == (10, -20.5)
    out = park.tenants[0].meters[0]
    assert out.quality is not None and out.quality.qcvn40_column == "A"
    assert out.quality.temperature_c == 31 and out.destination == "discharged"
    assert out.storage == "day"
    b_in = park.tenants[1].meters[0]
    # 0.25 given; the two uses without a share split the remaining 0.75 equally
    assert b_in.use_shares() == {"cooling_makeup": 0.25, "cleaning": 0.375, "domestic": 0.375}
    assert park.exchanges[0].share == 0.5 and park.exchanges[0].since == date(2024, 6, 1)
    assert park.link_capex[0].capex_vnd == 1.2e9


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"out_extra": ", uses: [{name: cooling_makeup}]"}, "uses apply to in-meters only"),
        ({"in_extra": ", destination: landfill"}, "destination applies to out-meters only"),
        ({"out_extra": ", destination: dumped_in_river"}, "Input should be"),
        ({"out_extra": ", offsets: energy.electricity"}, "offsets applies to destination self_use"),
        (
            {
                "in_extra": ", uses: [{name: cooling_makeup, share: 0.7}, {name: cleaning, share: 0.5}]"
            },
            "add up to 1.2, above 1",
        ),
        (
            {"in_extra": ", uses: [{name: cooling_makeup, share: 1}, {name: cleaning}]"},
            "nothing is left",
        ),
        (
            {"in_extra": ", uses: [{name: cleaning}, {name: cleaning}]"},
            "'cleaning' is listed twice",
        ),
        ({"in_extra": ", uses: [{name: Cooling Makeup}]"}, "String should match pattern"),
        ({"out_extra": ", quality: {qcvn40_column: D}"}, "Input should be 'A', 'B' or 'C'"),
        ({"out_extra": ", quality: {colour: blue}"}, "unknown key"),
        ({"a_extra": "location: {x_m: .nan, y_m: 0}"}, "must be finite"),
        ({"a_extra": "location: {lat: 10.8, lon: 106.7}"}, "unknown key"),
        ({"out_extra": ", storage: year"}, "Input should be"),
    ],
)
def test_bad_meter_and_tenant_fields_are_named(kwargs: dict[str, str], expected: str) -> None:
    found = problems(registry_text(**kwargs))
    assert any(expected in p for p in found), found
    assert all(p.startswith("park.yaml: parks[0] (p).tenants[0] (a)") for p in found), found


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{from_meter: a-out, to_meter: b-in, since: 2024-01-01}", "exactly one of"),
        (
            "{from_meter: a-out, to_meter: b-in, share: 0.5, quantity_per_day: 3, since: 2024-01-01}",
            "exactly one of",
        ),
        (
            "{from_meter: a-out, to_meter: b-in, share: 1.5, since: 2024-01-01}",
            "less than or equal",
        ),
        (
            "{from_meter: a-out, to_meter: nope, share: 0.5, since: 2024-01-01}",
            "'nope' is not a meter",
        ),
        ("{from_meter: b-in, to_meter: a-in, share: 0.5, since: 2024-01-01}", "not an out-meter"),
        ("{from_meter: a-out, to_meter: a-out, share: 0.5, since: 2024-01-01}", "not an in-meter"),
        (
            "{from_meter: a-out, to_meter: a-in, share: 0.5, since: 2024-01-01}",
            "both meters belong",
        ),
        ("{from_meter: a-out, to_meter: b-in, share: 0.5}", "Field required"),
    ],
)
def test_bad_exchanges_are_named(entry: str, expected: str) -> None:
    found = problems(registry_text(park_extra=f"    exchanges:\n      - {entry}"))
    assert any(expected in p for p in found), found
    assert all(p.startswith("park.yaml: parks[0] (p)") for p in found), found


def test_bad_link_capex_is_named() -> None:
    text = registry_text(
        park_extra="""    link_capex:
      - {from_meter: a-out, to_meter: b-in, capex_vnd: 10}
      - {from_meter: a-out, to_meter: b-in, capex_vnd: 20}
      - {from_meter: a-out, to_meter: b-in, capex_vnd: -1}"""
    )
    found = problems(text)
    assert any("greater than or equal to 0" in p and "link_capex[2]" in p for p in found), found
    text = registry_text(
        park_extra="""    link_capex:
      - {from_meter: a-out, to_meter: b-in, capex_vnd: 10}
      - {from_meter: a-out, to_meter: b-in, capex_vnd: 20}"""
    )
    found = problems(text)
    assert any("a-out -> b-in is listed twice" in p for p in found), found


def test_sample_park_carries_what_matching_needs() -> None:
    reg = load_registry(SAMPLE_REGISTRY)
    park = reg.parks["songlam"]
    assert all(t.location is not None for t in park.tenants)
    meters = {m.id: m for t in park.tenants for m in t.meters}
    # every existing meter is still there, plus the paper mill's own boiler
    for mid in ("thep-elec", "det-effluent", "wwtp-effluent", "nd-flyash", "lv-water", "cl-solar"):
        assert mid in meters
    assert meters["gs-boiler"].destination == "self_use"
    assert meters["nd-makeup"].use_shares() == {"boiler_feed": 0.8, "cooling_makeup": 0.2}
    assert meters["wwtp-effluent"].quality is not None
    assert meters["wwtp-effluent"].quality.qcvn40_column == "A"
    assert meters["det-effluent"].quality is not None
    assert meters["det-effluent"].quality.qcvn40_column == "B"
    shares = [e.share for e in park.exchanges if e.from_meter == "nd-steam"]
    assert sum(s or 0 for s in shares) == pytest.approx(1.0)
    out_meters = [m for m in meters.values() if m.direction.value == "out"]
    assert all(m.destination is not None for m in out_meters)
