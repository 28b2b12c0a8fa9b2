"""Each party's money on a link: the split, the investor's NPV, IRR and discounted payback,
checked against numpy-financial's published examples and sums done by hand."""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.match.finance import Terms, annuity_factor, discounted_payback, npv_rows, split

TERMS = Terms(
    supplier_share=0.5, price_vnd_per_unit=None, investor="receiver", rate=0.1, years=10,
    opex_share=0.03,
)  # fmt: skip


def test_numpy_financial_reproduces_its_documented_examples() -> None:
    """The library's own docs: npv(0.281, [-100, 39, 59, 55, 20]) ~ -0.0085, irr ~ 0.2809."""
    assert npf.npv(0.281, [-100, 39, 59, 55, 20]) == pytest.approx(-0.0084785916384548798)
    assert npf.irr([-100, 39, 59, 55, 20]) == pytest.approx(0.28095, abs=1e-5)


def test_annuity_factor_by_hand() -> None:
    assert annuity_factor(0.1, 10) == pytest.approx(0.16274539488)  # the textbook 10 %, 10 y
    assert annuity_factor(0.0, 4) == 0.25


def test_discounted_payback_by_hand() -> None:
    # -1000, then 400 a year at 10 %: 363.6, 330.6, 300.5 -> 994.7 after 3 years, the 4th
    # year's 273.2 repays the last 5.3: 3.02 years
    flows = np.array([-1000.0, 400, 400, 400, 400])
    assert discounted_payback(flows, 0.1) == pytest.approx(
        3 + (1000 - 994.7408) / 273.2054, rel=1e-4
    )
    assert discounted_payback(np.array([-1000.0, 100, 100]), 0.1) is None
    assert discounted_payback(np.array([0.0, 100]), 0.1) == 0.0


def test_the_default_split_gives_each_party_its_share_of_the_net_benefit() -> None:
    # the supplier saves 100 M of landfill fees, the receiver 300 M of purchases; a 500 M pipe
    f = split(100e6, 300e6, 350e6, 1000.0, 500e6, 0.8, 1.1, TERMS)
    opex, annuity = 15e6, 500e6 * annuity_factor(0.1, 10)
    net = 400e6 - opex - annuity
    assert f.supplier_net_vnd_per_year == round(net / 2)
    assert f.receiver_net_vnd_per_year == round(net / 2)
    assert f.transfer_vnd_per_year == round(net / 2 - 100e6)
    assert f.opex_vnd_per_year == 15_000_000
    flows = [-500e6] + [net / 2 + annuity] * 10
    assert f.npv_vnd == round(npf.npv(0.1, flows))
    assert f.irr == pytest.approx(npf.irr(flows))
    # the sensitivity: the avoided purchase (350 M) 20 % lower, and volume at P10
    rows = {r.case: r for r in f.sensitivity}
    assert rows["base"].park_vnd_per_year == 400_000_000
    assert rows["price -20%"].park_vnd_per_year == 330_000_000
    assert rows["volume P10"].park_vnd_per_year == 320_000_000
    assert rows["price -20%"].investor_npv_vnd < rows["base"].investor_npv_vnd


def test_a_set_price_and_a_supplier_that_builds() -> None:
    terms = Terms(0.5, 20_000.0, "supplier", 0.1, 10, 0.0)
    f = split(0.0, 100e6, 100e6, 2000.0, 200e6, 1.0, 1.0, terms)
    assert f.transfer_vnd_per_year == 40_000_000  # 2,000 units at 20,000 VND
    annuity = 200e6 * annuity_factor(0.1, 10)
    assert f.supplier_net_vnd_per_year == round(40e6 - annuity)
    assert f.receiver_net_vnd_per_year == 60_000_000
    assert f.investor == "supplier"
    assert f.npv_vnd == round(npf.npv(0.1, [-200e6] + [40e6] * 10))


@given(
    s=st.floats(-1e9, 1e9),
    r=st.floats(-1e9, 1e9),
    capex=st.one_of(st.none(), st.floats(0, 1e10)),
    share=st.floats(0, 1),
)
def test_the_parties_together_get_exactly_the_net_benefit(
    s: float, r: float, capex: float | None, share: float
) -> None:
    terms = Terms(share, None, "receiver", 0.1, 10, 0.03)
    f = split(s, r, abs(r), 1.0, capex, 1.0, 1.0, terms)
    c = capex or 0.0
    net = s + r - 0.03 * c - (c * annuity_factor(0.1, 10) if c else 0.0)
    assert f.supplier_net_vnd_per_year + f.receiver_net_vnd_per_year == pytest.approx(net, abs=2)
    assert f.supplier_net_vnd_per_year == pytest.approx(share * net, abs=1)


@given(
    rate=st.floats(0.0, 0.5),
    flows=st.lists(
        st.lists(st.floats(-1e10, 1e10), min_size=11, max_size=11), min_size=1, max_size=6
    ),
)
def test_npv_of_many_rows_is_numpy_financials_to_the_last_bit(
    rate: float, flows: list[list[float]]
) -> None:
    """The sensitivity table discounts its cases at once: each row must be exactly the figure
    ``npf.npv`` gives for that series alone (a different summation order would move a
    rounded dong now and then)."""
    got = npv_rows(rate, np.array(flows))
    assert [float(g) for g in got] == [float(npf.npv(rate, row)) for row in flows]


@given(
    s=st.floats(-1e9, 1e9),
    r=st.floats(-1e9, 1e9),
    capex=st.one_of(st.none(), st.floats(1e6, 1e10)),
    p10=st.floats(0.1, 1.0),
)
def test_each_sensitivity_case_is_its_own_npv(
    s: float, r: float, capex: float | None, p10: float
) -> None:
    f = split(s, r, abs(r), 10.0, capex, p10, 1.3, TERMS)
    c = capex or 0.0
    opex, annuity = 0.03 * c, (c * annuity_factor(0.1, 10) if c else 0.0)
    for row, (price, volume) in zip(
        f.sensitivity, [(1.0, 1.0), (0.8, 1.0), (1.2, 1.0), (1.0, p10), (1.0, 1.3)], strict=True
    ):
        r_gain = (r + abs(r) * (price - 1.0)) * volume
        net = s * volume + r_gain - opex - annuity
        receiver = r_gain - (0.5 * net - s * volume) - opex - annuity
        expected = npf.npv(0.1, [-c] + [receiver + annuity] * 10)
        assert row.investor_npv_vnd == pytest.approx(expected, rel=1e-9, abs=2)
    assert f.npv_vnd == f.sensitivity[0].investor_npv_vnd
