"""A registered exchange: who gives what to whom, how the transfer is metered, and the dated
prices and emission factors its savings are valued at.

Prices are dated because contracts and tariffs change while an exchange runs: a change
applies from its effective date on, so a day already reported keeps the price it was valued
at. Money is ``Decimal`` dong per unit here and integer dong once booked (``savings.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from parkflow.errors import InputError
from service.exchanges.pipeline import Pipeline


class Method(StrEnum):
    """How the quantity exchanged is metered (IPMVP Option B: at the exchange's boundary)."""

    TRANSFER_METER = "transfer_meter"  # a meter of its own on the pipe, line or weighbridge
    SUPPLIER_SHARE = "supplier_share"  # a declared share of the supplier's out-meter
    RECEIVER_REDUCTION = "receiver_reduction"  # the receiver's in-meter below its baseline


class Side(StrEnum):
    SUPPLIER = "supplier"
    RECEIVER = "receiver"


class Benefit(StrEnum):
    """What a unit exchanged counts as besides money."""

    WATER = "water"  # m3 of water reused
    LANDFILL = "landfill"  # t kept out of landfill
    ENERGY = "energy"  # kWh: money and CO2e only
    MATERIAL = "material"  # t of by-product that is not landfill diversion


class Item(StrEnum):
    """The dated money lines of an exchange, per unit exchanged."""

    DISPLACED = "displaced"  # what the receiver stops buying
    AVOIDED_DISPOSAL = "avoided_disposal"  # the supplier's disposal or treatment it stops paying
    TRANSFER = "transfer"  # what the receiver pays the supplier (negative: a gate fee)
    TRANSPORT = "transport"  # a cost, paid by ``paid_by``
    TREATMENT = "treatment"  # a cost, paid by ``paid_by``


COSTS = frozenset({Item.TRANSPORT, Item.TREATMENT})


@dataclass(frozen=True, slots=True)
class Price:
    """``vnd_per_unit`` for ``item`` from ``effective`` on. ``hours``: the local hours a
    time-of-use band covers (empty: all day); one date may carry several disjoint bands."""

    item: Item
    effective: date
    vnd_per_unit: Decimal
    paid_by: Side | None = None  # costs only
    hours: tuple[int, ...] = ()
    source: str = ""

    def covers(self, hour: int) -> bool:
        return not self.hours or hour in self.hours


@dataclass(frozen=True, slots=True)
class Factor:
    """CO2e avoided per unit exchanged in one calendar year (t/unit): grid factors change
    every year (Viet Nam's combined margin is republished yearly)."""

    year: int
    t_per_unit: Decimal
    source: str = ""


@dataclass(frozen=True, slots=True)
class Metering:
    """Where the quantity comes from. ``meter`` is the valued side: the transfer meter, the
    supplier's out-meter (times ``share``) or the receiver's in-meter (``baseline_per_hour``
    minus its reading). ``check_meter``, on ``check_side``, reconciles it: the difference is
    the loss, beyond ``tolerance`` a disagreement."""

    method: Method
    meter: str
    share: Decimal | None = None
    baseline_per_hour: float | None = None
    check_meter: str | None = None
    check_side: Side = Side.RECEIVER
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.method is Method.SUPPLIER_SHARE and not (
            self.share is not None and 0 < self.share <= 1
        ):
            raise InputError("a supplier-share exchange declares its share, in (0, 1]")
        if self.method is Method.RECEIVER_REDUCTION and self.baseline_per_hour is None:
            raise InputError("a receiver-reduction exchange declares its baseline per hour")
        if not 0 <= self.tolerance < 1:
            raise InputError("the reconciliation tolerance is a share in [0, 1)")

    @property
    def valued_side(self) -> Side:
        if self.method is Method.SUPPLIER_SHARE:
            return Side.SUPPLIER
        if self.method is Method.RECEIVER_REDUCTION:
            return Side.RECEIVER
        # a transfer meter checked against one side stands for the other
        return Side.SUPPLIER if self.check_side is Side.RECEIVER else Side.RECEIVER


@dataclass(frozen=True, slots=True)
class Exchange:
    id: str
    park: str
    supplier: str  # tenant ids
    receiver: str
    resource: str
    unit: str
    benefit: Benefit
    metering: Metering
    start: date
    end: date | None = None
    # the supplier's out-meter the flow leaves and the receiver's in-meter it displaces: what
    # detection subtracts (``service/exchanges/detection.py``)
    from_meter: str | None = None
    to_meter: str | None = None
    opportunity_id: str | None = None
    pipeline: Pipeline | None = None
    prices: tuple[Price, ...] = ()
    factors: tuple[Factor, ...] = ()

    def active(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def check_new_price(existing: Sequence[Price], new: Price) -> None:
    """A price is added from a date after the item's latest, never backwards: days already
    valued keep their price. One date may get several time-of-use bands if they do not overlap."""
    if new.item in COSTS and new.paid_by is None:
        raise InputError(f"a {new.item} cost says who pays it (supplier or receiver)")
    for h in new.hours:
        if not 0 <= h < 24:
            raise InputError(f"hour {h} of a time-of-use band is not a local hour 0-23")
    same = [p for p in existing if p.item is new.item]
    if not same:
        return
    latest = max(p.effective for p in same)
    if new.effective < latest:
        raise InputError(
            f"a {new.item} price from {new.effective} would change days already priced from"
            f" {latest}: prices apply from their effective date forward only"
        )
    if new.effective == latest:
        bands = [p for p in same if p.effective == latest]
        for band in bands:
            if not band.hours or not new.hours or set(band.hours) & set(new.hours):
                raise InputError(f"a {new.item} price from {latest} is already set for those hours")


def price_at(prices: Sequence[Price], item: Item, day: date, hour: int) -> Price | None:
    """The price of ``item`` on ``day`` at local ``hour``: the latest effective on or before
    the day, in the band that covers the hour."""
    dates = [p.effective for p in prices if p.item is item and p.effective <= day]
    if not dates:
        return None
    latest = max(dates)
    for p in prices:
        if p.item is item and p.effective == latest and p.covers(hour):
            return p
    return None


def factor_for(factors: Sequence[Factor], year: int) -> Factor | None:
    """That year's factor; a year not yet published takes the latest earlier one (shown in
    the savings row as the year it came from)."""
    usable = [f for f in factors if f.year <= year]
    return max(usable, key=lambda f: f.year) if usable else None
