"""One paragraph per opportunity that a park manager can read and check against the meters.

It names both tenants, the stream with its quality, how often it flows, what the receiver
uses it for, the distance, how much both sides can really exchange at the coupling
resolution, and what that is worth; every figure in it is a field of the Opportunity.
"""

from __future__ import annotations

from parkflow.registry.schema import Meter, Tenant
from service.detect.surplus import Surplus, stream_phrase
from service.detect.text import fmt_hours, fmt_qty, fmt_vnd
from service.knowledge import Knowledge, Rule
from service.knowledge.entries import Legal
from service.match.finance import Finance
from service.match.opportunity import Opportunity

_COUPLING = {
    "hour": "hour by hour",
    "day": "day by day (a tank buffers within the day)",
    "week": "week by week (stored between pick-ups)",
    "month": "over each month (stored between pick-ups)",
}
_BUCKET = {"hour": "hours", "day": "days", "week": "weeks", "month": "months"}


def explain(
    o: Opportunity,
    surplus: Surplus,
    supplier: Tenant,
    supply_meter: Meter,
    receiver: Tenant,
    demand_meter: Meter,
    rule: Rule,
    knowledge: Knowledge,
    valued_as: str = "",
) -> str:
    """``valued_as``: how the receiver's avoided purchase was valued (its boiler's fuel, or a
    stated default), said after the figures."""
    stream = stream_phrase(supply_meter, knowledge)
    info = knowledge.destination(supply_meter.destination)
    what = f"{fmt_qty(o.supply_p50_per_day)} {o.supply_unit}/day of {stream}"
    said = info.verb.replace("{what}", what) if info is not None else f"releases {what}"
    when = (
        f", mostly {fmt_hours(surplus.active_hours)}" if 0 < len(surplus.active_hours) < 24 else ""
    )
    uses = " and ".join(knowledge.label(u) for u in o.uses)
    use_text = f" for {uses}" if uses else ""
    if rule.max_demand_share < 1:
        use_text += f" (up to {fmt_qty(rule.max_demand_share * 100)}% of it replaceable)"
    demand_label = knowledge.label(o.demand_resource)
    distance = f"{fmt_qty(o.distance_m)} m away" + (
        " (no location on file, distance assumed)" if o.distance_assumed else ""
    )
    matched = f"{fmt_qty(o.matched_per_day)} {o.demand_unit}/day"
    if o.supply_unit != o.demand_unit or abs(o.supply_used_per_day - o.matched_per_day) > 1e-9:
        matched = (
            f"{fmt_qty(o.supply_used_per_day)} {o.supply_unit}/day replacing {matched} of"
            f" {demand_label}"
        )
    if o.coupling in ("hour", "day"):
        overlap = f"on {o.days_matched} of {o.days} days"
    else:
        overlap = f"in {o.buckets_matched} of {o.n_buckets} {_BUCKET[o.coupling]}"
    v = o.value
    money = (
        f"about {fmt_vnd(v.park_vnd_per_year)}/yr for the park ({receiver.name}"
        f" {_signed(v.receiver_vnd_per_year)}, {supplier.name} {_signed(v.supplier_vnd_per_year)}"
        " before any transfer price)"
    )
    gains = []
    if v.water_saved_m3_per_year > 0:
        gains.append(f"{fmt_qty(v.water_saved_m3_per_year)} m3/yr of water")
    if v.co2e_avoided_t_per_year >= 0.05:
        gains.append(f"{fmt_qty(v.co2e_avoided_t_per_year)} t CO2e/yr avoided")
    elif v.co2e_avoided_t_per_year <= -0.05:
        gains.append(
            f"{fmt_qty(-v.co2e_avoided_t_per_year)} t CO2e/yr more (transport, pre-processing)"
        )
    if v.landfill_diverted_t_per_year > 0:
        gains.append(f"{fmt_qty(v.landfill_diverted_t_per_year)} t/yr kept out of landfill")
    text = (
        f"{supplier.name} {said} on {o.supply_days_present} of {o.days} days{when};"
        f" {receiver.name} uses {fmt_qty(o.demand_per_day)} {o.demand_unit}/day of"
        f" {demand_label}{use_text} {distance}: {matched} can be exchanged"
        f" {_COUPLING[o.coupling]}, {overlap}, {money}"
    )
    if gains:
        text += ", " + ", ".join(gains)
    if v.finance is not None:
        text += "; " + finance_text(v.finance, supplier, receiver, v.capex_vnd, knowledge)
    elif v.capex_vnd is not None:
        if v.payback_years is not None:
            text += f"; simple payback {fmt_qty(v.payback_years)} years on {fmt_vnd(v.capex_vnd)}"
        else:
            text += f"; no payback on {fmt_vnd(v.capex_vnd)} at these prices"
    if valued_as:
        text += f"; {valued_as}"
    if o.competing_receivers:
        text += f"; {o.competing_receivers} other receiver(s) could take the same surplus"
    if o.checks:
        text += f". To confirm before agreeing: {'; '.join(o.checks)}"
    if o.confidence is not None:
        text += f". {confidence_text(o)}"
    if o.legal:
        text += f". Legal: {o.legal}"
    else:
        text += ". Legal: not screened (the rule states no legal requirements)"
    if v.assumptions:
        text += f". Figures rest on assumptions to confirm: {', '.join(v.assumptions)}"
    if rule.note:
        text += f". Note: {rule.note.strip()}"
    return text.rstrip(".") + "."


def finance_text(
    f: Finance, supplier: Tenant, receiver: Tenant, capex: float | None, knowledge: Knowledge
) -> str:
    """Each party after the transfer price, and the investor's return on what it builds."""
    if f.transfer_vnd_per_year >= 0:
        pays = f"{receiver.name} pays {supplier.name} {fmt_vnd(f.transfer_vnd_per_year)}/yr"
    else:
        pays = f"{supplier.name} pays {receiver.name} {fmt_vnd(-f.transfer_vnd_per_year)}/yr"
    text = (
        f"at a transfer price splitting the net benefit ({pays}) {supplier.name} gains"
        f" {_signed(f.supplier_net_vnd_per_year)}/yr and {receiver.name}"
        f" {_signed(f.receiver_net_vnd_per_year)}/yr"
    )
    if capex:
        m = knowledge.matching
        investor = receiver.name if f.investor == "receiver" else supplier.name
        irr = f"IRR {f.irr:.0%}" if f.irr is not None else "no IRR"
        payback = (
            f"discounted payback {fmt_qty(f.discounted_payback_years)} years"
            if f.discounted_payback_years is not None
            else f"not repaid within {round(m.capex_life_years)} years"
        )
        text += (
            f"; {investor} invests {fmt_vnd(capex)}: NPV {_signed(f.npv_vnd)} over"
            f" {round(m.capex_life_years)} years at {m.capex_discount_rate:.0%}, {irr},"
            f" {payback}"
        )
    return text


def confidence_text(o: Opportunity) -> str:
    c = o.confidence
    assert c is not None
    text = f"Confidence {c.level}: {c.assumption_share:.0%} of the value rests on assumed figures"
    if c.conversion_assumed:
        text += " and the quantity on an assumed conversion"
    text += (
        f"; {fmt_qty(c.matched_p10_per_day)}-{fmt_qty(c.matched_p90_per_day)} {o.demand_unit}/day"
        f" matched on 8 days in 10 (P10-P90), {fmt_vnd(c.park_vnd_p10)}-"
        f"{fmt_vnd(c.park_vnd_p90)}/yr; {c.days} days of data"
    )
    if c.all_seasons:
        seen = " and ".join(c.seasons) or "no"
        text += f", {seen} season" + ("s" if len(c.seasons) > 1 else "")
        text += "" if len(c.seasons) == len(c.all_seasons) else " only"
    return text


def legal_text(legal: Legal) -> str:
    """The rule's legal status and what it asks, with its sources, for a tenant to act on."""
    text = f"{legal.status_text}: {legal.summary.strip().rstrip('.')}"
    if legal.conditions:
        text += " (" + "; ".join(c.strip().rstrip(".") for c in legal.conditions) + ")"
    return f"{text} [{', '.join(legal.sources)}, as of {legal.as_of.isoformat()}]"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + fmt_vnd(abs(x))
