"""Each party's money on one link: a transfer price between them, and the investor's NPV, IRR
and discounted payback with a sensitivity table. Pure.

A link's value is the park's; the parties only agree when each sees its own gain. By default
the transfer price splits the net annual benefit (after opex and the investment's annuity)
between supplier and receiver by a share the park sets; a park may set a share per resource in
its knowledge file, or a price per unit for one exchange in its registry. Whoever builds the
link (the receiver unless the registry says otherwise) carries the investment and is paid back
out of its side. NPV and IRR come from numpy-financial (the maintained successor of numpy's
financial functions), tested against its published examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy_financial as npf


def annuity_factor(rate: float, years: float) -> float:
    """Share of an investment paid each year to recover it over its life at ``rate``."""
    if rate == 0:
        return 1.0 / years
    return float(rate / (1.0 - (1.0 + rate) ** -years))


@dataclass(frozen=True, slots=True)
class Terms:
    """What the split needs: the supplier's share of the net benefit, or a price per supplier
    unit the park set for this exchange, who invests, and the money settings."""

    supplier_share: float
    price_vnd_per_unit: float | None
    investor: str  # "receiver" or "supplier"
    rate: float
    years: int
    opex_share: float  # of the investment, per year


@dataclass(frozen=True, slots=True)
class Sensitivity:
    case: str  # base, price -20%, price +20%, volume P10, volume P90
    park_vnd_per_year: int
    investor_npv_vnd: int


@dataclass(frozen=True, slots=True)
class Finance:
    """Integer dong: these are the figures parties book."""

    transfer_vnd_per_year: int  # receiver to supplier (negative: the supplier pays a gate fee)
    supplier_net_vnd_per_year: int  # after the transfer, opex and its investment if it builds
    receiver_net_vnd_per_year: int
    investor: str
    opex_vnd_per_year: int
    npv_vnd: int  # the investor's, over the life at the rate
    irr: float | None  # None without an investment or when its flows never turn positive
    discounted_payback_years: float | None  # None when not repaid within the life
    sensitivity: tuple[Sensitivity, ...]


def split(
    supplier_vnd: float,
    receiver_vnd: float,
    purchase_vnd: float,
    supply_per_year: float,
    capex_vnd: float | None,
    volume_p10: float,
    volume_p90: float,
    terms: Terms,
) -> Finance:
    """``supplier_vnd``/``receiver_vnd``: each side's annual gain before any transfer (the
    avoided disposal; the avoided purchase less transport and pre-processing); the volume
    factors scale every flow (P10 and P90 matched per day over the mean)."""

    def case(price: float, volume: float) -> tuple[float, float, float, float]:
        s_gain = supplier_vnd * volume
        r_gain = (receiver_vnd + purchase_vnd * (price - 1.0)) * volume
        capex = capex_vnd or 0.0
        opex = capex * terms.opex_share
        annuity = capex * annuity_factor(terms.rate, terms.years) if capex else 0.0
        net = s_gain + r_gain - opex - annuity
        if terms.price_vnd_per_unit is not None:
            transfer = terms.price_vnd_per_unit * supply_per_year * volume
        else:
            # the supplier's side ends at its share of the net benefit
            s_after = terms.supplier_share * net + (
                annuity + opex if terms.investor == "supplier" else 0.0
            )
            transfer = s_after - s_gain
        supplier = s_gain + transfer - (opex + annuity if terms.investor == "supplier" else 0.0)
        receiver = r_gain - transfer - (opex + annuity if terms.investor == "receiver" else 0.0)
        flow = (supplier if terms.investor == "supplier" else receiver) + annuity
        return transfer, supplier, receiver, flow

    transfer, supplier, receiver, _ = case(1.0, 1.0)
    capex = capex_vnd or 0.0
    cases = (
        ("base", 1.0, 1.0),
        ("price -20%", 0.8, 1.0),
        ("price +20%", 1.2, 1.0),
        ("volume P10", 1.0, volume_p10),
        ("volume P90", 1.0, volume_p90),
    )
    # Every case's flows in one matrix, discounted at once (a call per case cost more than
    # the rest of a ranked row together, and a run values thousands of rows).
    yearly = np.empty((len(cases), terms.years + 1))
    yearly[:, 0] = -capex
    for k, (_, price, volume) in enumerate(cases):
        yearly[k, 1:] = case(price, volume)[3]
    npvs = npv_rows(terms.rate, yearly)
    flows = yearly[0]  # the base case
    npv = float(npvs[0])
    irr = _irr(flows) if capex > 0 else None
    table = []
    for k, (name, price, volume) in enumerate(cases):
        park = supplier_vnd * volume + (receiver_vnd + purchase_vnd * (price - 1.0)) * volume
        table.append(Sensitivity(name, round(park), round(float(npvs[k]))))
    return Finance(
        transfer_vnd_per_year=round(transfer),
        supplier_net_vnd_per_year=round(supplier),
        receiver_net_vnd_per_year=round(receiver),
        investor=terms.investor,
        opex_vnd_per_year=round(capex * terms.opex_share),
        npv_vnd=round(npv),
        irr=irr,
        discounted_payback_years=discounted_payback(flows, terms.rate),
        sensitivity=tuple(table),
    )


def npv_rows(rate: float, flows: np.ndarray) -> np.ndarray:
    """numpy-financial's ``npv`` of each row (year 0 first), with its very arithmetic: each
    row summed along its own contiguous axis, so every figure is the one ``npf.npv`` gives
    (``tests/service/test_finance.py`` holds them equal)."""
    rows = np.ascontiguousarray(flows, dtype=np.float64)
    out: np.ndarray = (rows / (1 + rate) ** np.arange(0, rows.shape[1])).sum(axis=1)
    return out


def _irr(flows: np.ndarray) -> float | None:
    value = float(npf.irr(flows))
    return None if not np.isfinite(value) else value


def discounted_payback(flows: np.ndarray, rate: float) -> float | None:
    """Years until the discounted flows repay the first (year 0) outlay, interpolated within
    the year it happens; 0 without an outlay; None when the life does not repay it."""
    if flows[0] >= 0:
        return 0.0
    discounted = flows / (1.0 + rate) ** np.arange(len(flows))
    cumulative = np.cumsum(discounted)
    after = np.flatnonzero(cumulative >= 0)
    if len(after) == 0:
        return None
    year = int(after[0])
    before = cumulative[year - 1]
    return float(year - 1 + (-before) / discounted[year])
