"""What an alert says, in English and Vietnamese, and what it may not say before consent. Pure.

The privacy rule (issue: alerts to tenants): until the operator has recorded both parties'
consent to be introduced, an alert to a tenant about an exchange names no other tenant and
shows none of its data: not its id or name, not its meters, not the quantities its own meters
measure, not its position. It says what the recipient can act on: how far away, about how much
of its resource, about what it is worth to the recipient, and an opaque reference to quote to
the operator. Distances are rounded to 100 m, quantities and money to two significant figures,
so a figure in the alert cannot be matched to a counterpart's meter. Operators see everything.

Every channel sends only what ``render`` returns (subject, text and the JSON facts), so this
one function is where the rule holds for MQTT, webhooks, e-mail and any later API alike.

The template table ``TEMPLATES`` is keyed by kind and language, one entry per variant of
audience; ``tests/service/alerts/test_texts.py`` checks both languages have every entry with
the same placeholders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from service.alerts.channels.base import Language, Notification, Recipient, Severity
from service.alerts.delivery import Disabled
from service.events import (
    OPPORTUNITY_GONE,
    OPPORTUNITY_NEW,
    SURPLUS_GONE,
    SURPLUS_GROWN,
    SURPLUS_NEW,
    SURPLUS_SHRUNK,
)
from service.match import Opportunity

OPERATOR = "operator"  # the audience that sees everything

Variant = Literal[
    "anonymous_supplier",
    "anonymous_receiver",
    "named_supplier",
    "named_receiver",
    "operator",
    "own",  # a tenant's own surplus: its data only, nothing to hide from it
]

# kind -> language -> variant -> (subject, text); placeholders are filled by ``render``.
TEMPLATES: dict[str, dict[Language, dict[Variant, tuple[str, str]]]] = {
    OPPORTUNITY_NEW: {
        "en": {
            "anonymous_supplier": (
                "A buyer for your {resource}",
                "A tenant about {distance} away could use about {quantity} of your {resource},"
                " {value}. Reference {ref}: ask the park operator to introduce you.",
            ),
            "anonymous_receiver": (
                "A source of {resource} near you",
                "A tenant about {distance} away has {resource} that could replace about"
                " {quantity} of your supply, {value}. Reference {ref}: ask the park"
                " operator to introduce you.",
            ),
            "named_supplier": (
                "{counterpart_name} could use your {resource}",
                "{counterpart_name} ({counterpart}, meter {counterpart_meter}), about {distance}"
                " away, could use about {quantity} of your {resource} (meter {own_meter}),"
                " {value}. Reference {ref}.",
            ),
            "named_receiver": (
                "{counterpart_name} has {resource} for you",
                "{counterpart_name} ({counterpart}, meter {counterpart_meter}), about {distance}"
                " away, has {resource} that could replace about {quantity} of your supply"
                " (meter {own_meter}), {value}. Reference {ref}.",
            ),
            "operator": (
                "Opportunity {supplier} → {receiver}: {resource}",
                "{supplier_name} ({supplier}, meter {supplier_meter}, {supplier_per_day} a day)"
                " → {receiver_name} ({receiver}, meter {receiver_meter}, {receiver_per_day} a"
                " day), {distance_exact}: {exchanged} a day. Value a year: supplier"
                " {supplier_value}, receiver {receiver_value}, park {park_value}. Rule {rule},"
                " opportunity {opportunity_id}, reference {ref}.",
            ),
        },
        "vi": {
            "anonymous_supplier": (
                "Có bên cần {resource} của quý công ty",
                "Một doanh nghiệp cách khoảng {distance} có thể sử dụng khoảng {quantity}"
                " {resource} của quý công ty, {value}. Mã tham chiếu"
                " {ref}: đề nghị ban quản lý khu công nghiệp giới thiệu hai bên.",
            ),
            "anonymous_receiver": (
                "Có nguồn {resource} gần quý công ty",
                "Một doanh nghiệp cách khoảng {distance} có {resource} có thể thay thế khoảng"
                " {quantity} nguồn cung của quý công ty, {value}. Mã"
                " tham chiếu {ref}: đề nghị ban quản lý khu công nghiệp giới thiệu hai bên.",
            ),
            "named_supplier": (
                "{counterpart_name} có thể sử dụng {resource} của quý công ty",
                "{counterpart_name} ({counterpart}, đồng hồ {counterpart_meter}), cách khoảng"
                " {distance}, có thể sử dụng khoảng {quantity} {resource} của quý công ty (đồng"
                " hồ {own_meter}), {value}. Mã tham chiếu {ref}.",
            ),
            "named_receiver": (
                "{counterpart_name} có {resource} cho quý công ty",
                "{counterpart_name} ({counterpart}, đồng hồ {counterpart_meter}), cách khoảng"
                " {distance}, có {resource} có thể thay thế khoảng {quantity} nguồn cung của quý"
                " công ty (đồng hồ {own_meter}), {value}. Mã tham chiếu"
                " {ref}.",
            ),
            "operator": (
                "Cơ hội {supplier} → {receiver}: {resource}",
                "{supplier_name} ({supplier}, đồng hồ {supplier_meter}, {supplier_per_day} mỗi"
                " ngày) → {receiver_name} ({receiver}, đồng hồ {receiver_meter},"
                " {receiver_per_day} mỗi ngày), {distance_exact}: {exchanged} mỗi ngày. Giá trị"
                " mỗi năm: bên cung cấp {supplier_value}, bên nhận {receiver_value}, khu công"
                " nghiệp {park_value}. Quy tắc {rule}, cơ hội {opportunity_id}, mã tham chiếu"
                " {ref}.",
            ),
        },
    },
    OPPORTUNITY_GONE: {
        "en": {
            "anonymous_supplier": (
                "Opportunity {ref} no longer found",
                "The opportunity to supply your {resource} to a tenant about {distance} away"
                " (reference {ref}) was not found in the latest detection run.",
            ),
            "anonymous_receiver": (
                "Opportunity {ref} no longer found",
                "The opportunity to receive {resource} from a tenant about {distance} away"
                " (reference {ref}) was not found in the latest detection run.",
            ),
            "named_supplier": (
                "Opportunity with {counterpart_name} no longer found",
                "The opportunity to supply your {resource} to {counterpart_name}"
                " ({counterpart}) (reference {ref}) was not found in the latest detection run.",
            ),
            "named_receiver": (
                "Opportunity with {counterpart_name} no longer found",
                "The opportunity to receive {resource} from {counterpart_name}"
                " ({counterpart}) (reference {ref}) was not found in the latest detection run.",
            ),
            "operator": (
                "Opportunity {supplier} → {receiver} gone",
                "Opportunity {opportunity_id} ({supplier_name} → {receiver_name}, {resource},"
                " reference {ref}) was not found in the latest detection run.",
            ),
        },
        "vi": {
            "anonymous_supplier": (
                "Không còn thấy cơ hội {ref}",
                "Cơ hội cung cấp {resource} của quý công ty cho một doanh nghiệp cách khoảng"
                " {distance} (mã tham chiếu {ref}) không còn trong lần phát hiện gần nhất.",
            ),
            "anonymous_receiver": (
                "Không còn thấy cơ hội {ref}",
                "Cơ hội nhận {resource} từ một doanh nghiệp cách khoảng {distance} (mã tham"
                " chiếu {ref}) không còn trong lần phát hiện gần nhất.",
            ),
            "named_supplier": (
                "Không còn thấy cơ hội với {counterpart_name}",
                "Cơ hội cung cấp {resource} của quý công ty cho {counterpart_name}"
                " ({counterpart}) (mã tham chiếu {ref}) không còn trong lần phát hiện gần nhất.",
            ),
            "named_receiver": (
                "Không còn thấy cơ hội với {counterpart_name}",
                "Cơ hội nhận {resource} từ {counterpart_name} ({counterpart}) (mã tham chiếu"
                " {ref}) không còn trong lần phát hiện gần nhất.",
            ),
            "operator": (
                "Cơ hội {supplier} → {receiver} không còn",
                "Cơ hội {opportunity_id} ({supplier_name} → {receiver_name}, {resource}, mã"
                " tham chiếu {ref}) không còn trong lần phát hiện gần nhất.",
            ),
        },
    },
}

_OWN_EN = "Your meter {meter} ({resource})"
_OWN_VI = "Đồng hồ {meter} ({resource}) của quý công ty"
_OP_EN = "{name} ({tenant}), meter {meter} ({resource})"
_OP_VI = "{name} ({tenant}), đồng hồ {meter} ({resource})"
TEMPLATES[SURPLUS_NEW] = {
    "en": {
        "own": (
            "New surplus of {resource}",
            _OWN_EN + " shows a surplus of about {quantity}, on {present} of the last {days} days."
            " Reference {ref}.",
        ),
        "operator": (
            "New surplus: {tenant} {resource}",
            _OP_EN
            + ": a surplus of {quantity} (P50), on {present} of {days} days. Surplus {surplus_id},"
            " reference {ref}.",
        ),
    },
    "vi": {
        "own": (
            "Có dư thừa {resource} mới",
            _OWN_VI
            + " cho thấy dư thừa khoảng {quantity}, trong {present} trên {days} ngày gần nhất. Mã"
            " tham chiếu {ref}.",
        ),
        "operator": (
            "Dư thừa mới: {tenant} {resource}",
            _OP_VI
            + ": dư thừa {quantity} (P50), trong {present} trên {days} ngày. Dư thừa {surplus_id},"
            " mã tham chiếu {ref}.",
        ),
    },
}
TEMPLATES[SURPLUS_GROWN] = {
    "en": {
        "own": (
            "Your surplus of {resource} grew",
            _OWN_EN
            + ": the surplus grew from about {before} to about {quantity}. Reference {ref}.",
        ),
        "operator": (
            "Surplus grew: {tenant} {resource}",
            _OP_EN
            + ": the surplus grew from {before} to {quantity}. Surplus {surplus_id}, reference"
            " {ref}.",
        ),
    },
    "vi": {
        "own": (
            "Dư thừa {resource} tăng",
            _OWN_VI
            + ": lượng dư thừa tăng từ khoảng {before} lên khoảng {quantity}. Mã tham chiếu {ref}.",
        ),
        "operator": (
            "Dư thừa tăng: {tenant} {resource}",
            _OP_VI
            + ": lượng dư thừa tăng từ {before} lên {quantity}. Dư thừa {surplus_id}, mã tham chiếu"
            " {ref}.",
        ),
    },
}
TEMPLATES[SURPLUS_SHRUNK] = {
    "en": {
        "own": (
            "Your surplus of {resource} shrank",
            _OWN_EN
            + ": the surplus shrank from about {before} to about {quantity}. Reference {ref}.",
        ),
        "operator": (
            "Surplus shrank: {tenant} {resource}",
            _OP_EN
            + ": the surplus shrank from {before} to {quantity}. Surplus {surplus_id}, reference"
            " {ref}.",
        ),
    },
    "vi": {
        "own": (
            "Dư thừa {resource} giảm",
            _OWN_VI
            + ": lượng dư thừa giảm từ khoảng {before} xuống khoảng {quantity}. Mã tham chiếu"
            " {ref}.",
        ),
        "operator": (
            "Dư thừa giảm: {tenant} {resource}",
            _OP_VI
            + ": lượng dư thừa giảm từ {before} xuống {quantity}. Dư thừa {surplus_id}, mã tham"
            " chiếu {ref}.",
        ),
    },
}
TEMPLATES[SURPLUS_GONE] = {
    "en": {
        "own": (
            "Surplus of {resource} no longer seen",
            _OWN_EN
            + ": the surplus of about {before} was not seen in the latest detection run. Reference"
            " {ref}.",
        ),
        "operator": (
            "Surplus gone: {tenant} {resource}",
            _OP_EN
            + ": the surplus of {before} was not seen in the latest run. Surplus {surplus_id},"
            " reference {ref}.",
        ),
    },
    "vi": {
        "own": (
            "Không còn thấy dư thừa {resource}",
            _OWN_VI
            + ": lượng dư thừa khoảng {before} không còn trong lần phát hiện gần nhất. Mã tham"
            " chiếu {ref}.",
        ),
        "operator": (
            "Dư thừa không còn: {tenant} {resource}",
            _OP_VI + ": lượng dư thừa {before} không còn trong lần phát hiện gần nhất. Dư thừa"
            " {surplus_id}, mã tham chiếu {ref}.",
        ),
    },
}

ENDPOINT_DISABLED = "endpoint_disabled"  # to operators: a tenant's channel stopped working
TEMPLATES[ENDPOINT_DISABLED] = {
    "en": {
        "operator": (
            "{channel} endpoint of {who} disabled",
            "The {channel} endpoint of {who} was disabled: {reason}. Its alerts wait"
            " undelivered until it is fixed and enabled again.",
        )
    },
    "vi": {
        "operator": (
            "Đã tắt kênh {channel} của {who}",
            "Kênh {channel} của {who} đã bị tắt: {reason}. Các cảnh báo của kênh này được giữ"
            " lại, chưa gửi, cho đến khi kênh được sửa và bật lại.",
        )
    },
}

# Resource names as a tenant reads them; others are shown by the last part of their id.
RESOURCE_NAMES: dict[str, dict[Language, str]] = {
    "water.treated_effluent": {"en": "treated effluent", "vi": "nước thải đã xử lý"},
    "water.wastewater": {"en": "wastewater", "vi": "nước thải"},
    "water.potable": {"en": "mains water", "vi": "nước sạch"},
    "energy.steam": {"en": "steam", "vi": "hơi nước"},
    "energy.hot_water": {"en": "hot water", "vi": "nước nóng"},
    "energy.waste_heat": {"en": "waste heat", "vi": "nhiệt thải"},
    "energy.electricity": {"en": "electricity", "vi": "điện"},
    "energy.solar_export": {"en": "surplus solar power", "vi": "điện mặt trời dư"},
    "energy.biogas": {"en": "biogas", "vi": "khí sinh học"},
    "waste.wood_pallets": {"en": "wood pallets", "vi": "pallet gỗ"},
    "waste.scrap_plastic": {"en": "scrap plastic", "vi": "nhựa phế liệu"},
    "waste.fly_ash": {"en": "fly ash", "vi": "tro bay"},
    "waste.sludge": {"en": "sludge", "vi": "bùn thải"},
    "waste.slag": {"en": "slag", "vi": "xỉ"},
    "waste.paper": {"en": "waste paper", "vi": "giấy phế liệu"},
}


@dataclass(frozen=True, slots=True)
class Side:
    """One party of an exchange, as the facts of an alert know it."""

    tenant: str
    name: str
    meter: str
    resource: str
    unit: str
    own_per_day: float  # what its own meter measures (supply P50, or demand)
    exchanged_per_day: float  # what would pass, in this side's unit
    vnd_per_year: float  # its benefit a year (negative: it gives something up)
    location: tuple[float, float] | None = None  # x, y on the park's site plan, metres


@dataclass(frozen=True, slots=True)
class OpportunityFacts:
    """What an opportunity alert is made from. ``ref``: an opaque reference the service
    assigns (an alert's or record's id), never derived from the parties' names or meters."""

    kind: str
    park: str
    ref: str
    opportunity_id: str
    rule: str
    supplier: Side
    receiver: Side
    distance_m: float
    park_vnd_per_year: float
    severity: Severity = "info"

    @classmethod
    def of(
        cls,
        kind: str,
        o: Opportunity,
        ref: str,
        names: Mapping[str, str],
        locations: Mapping[str, tuple[float, float]] | None = None,
    ) -> OpportunityFacts:
        """Facts of a matched opportunity; ``names``: tenant id -> name (the registry)."""
        where = locations or {}
        # each side's own gain at the transfer price (the net benefit split), as the
        # operator's explanation states it; before pricing, its avoided cost
        f = o.value.finance
        return cls(
            kind=kind,
            park=o.park,
            ref=ref,
            opportunity_id=o.id,
            rule=o.rule,
            supplier=Side(
                o.from_tenant,
                names.get(o.from_tenant, o.from_tenant),
                o.from_meter,
                o.supply_resource,
                o.supply_unit,
                o.supply_p50_per_day,
                o.supply_used_per_day,
                f.supplier_net_vnd_per_year if f else o.value.supplier_vnd_per_year,
                where.get(o.from_tenant),
            ),
            receiver=Side(
                o.to_tenant,
                names.get(o.to_tenant, o.to_tenant),
                o.to_meter,
                o.demand_resource,
                o.demand_unit,
                o.demand_per_day,
                o.matched_per_day,
                f.receiver_net_vnd_per_year if f else o.value.receiver_vnd_per_year,
                where.get(o.to_tenant),
            ),
            distance_m=o.distance_m,
            park_vnd_per_year=o.value.park_vnd_per_year,
        )


@dataclass(frozen=True, slots=True)
class SurplusFacts:
    """What a surplus alert is made from: one tenant's own meter, nobody else's data.
    ``per_day``: the surplus now (P50), ``before_per_day``: at the last run (grown, shrunk,
    gone)."""

    kind: str
    park: str
    ref: str
    surplus_id: str
    tenant: str
    name: str
    meter: str
    resource: str
    unit: str
    per_day: float | None
    before_per_day: float | None = None
    days_present: int = 0
    days: int = 0
    severity: Severity = "info"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    data: dict[str, Any]  # the JSON facts channels send with the text
    severity: Severity


# Numbers as each language writes them, rounded where the rule says.


def round_sig(x: float, digits: int = 2) -> float:
    if x == 0 or not math.isfinite(x):
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def round_distance(m: float) -> int:
    """To 100 m, at least 100 m: a counterpart's position is not to be found from it."""
    return max(100, round(m / 100.0) * 100) if math.isfinite(m) else 100


def number(x: float, language: Language, decimals: int = 0) -> str:
    text = f"{x:,.{decimals}f}"
    if language == "vi":  # 1.234,5
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def quantity(x: float, unit: str, language: Language, exact: bool = False) -> str:
    if exact:
        return f"{number(x, language, 1)} {unit}"
    r = round_sig(x)
    per = "day" if language == "en" else "ngày"
    return f"{number(r, language, 1 if 0 < abs(r) < 10 else 0)} {unit}/{per}"


def money(vnd: float, language: Language, exact: bool = False) -> str:
    """The money phrase of a tenant's alert (worth about 400 million VND/yr to you; mang lại
    khoảng 400 triệu VND/năm cho quý công ty; what it costs when negative); ``exact`` for
    operators: the amount alone."""
    year = "yr" if language == "en" else "năm"
    if exact:
        return f"{number(vnd, language)} VND"
    v = round_sig(abs(vnd))
    words = {"en": (("billion", 1e9), ("million", 1e6)), "vi": (("tỷ", 1e9), ("triệu", 1e6))}
    amount = f"{number(v, language)} VND"
    for word, size in words[language]:
        if v >= size:
            scaled = v / size
            decimals = 1 if scaled < 10 and scaled != int(scaled) else 0
            amount = f"{number(scaled, language, decimals)} {word} VND"
            break
    if language == "en":
        if vnd < 0:
            return f"costing you about {amount}/{year}"
        return f"worth about {amount}/{year} to you"
    if vnd < 0:
        return f"khiến quý công ty tốn khoảng {amount}/{year}"
    return f"mang lại khoảng {amount}/{year} cho quý công ty"


def distance(m: float, language: Language, exact: bool = False) -> str:
    if exact:
        return (
            f"{number(m, language)} m apart"
            if language == "en"
            else f"cách nhau {number(m, language)} m"
        )
    return f"{number(round_distance(m), language)} m"


def resource_name(resource: str, language: Language) -> str:
    known = RESOURCE_NAMES.get(resource)
    if known is not None:
        return known[language]
    return resource.rsplit(".", 1)[-1].replace("_", " ")


def render(
    facts: OpportunityFacts | SurplusFacts, audience: str, consented: bool, language: Language
) -> Rendered:
    """The alert about ``facts`` for ``audience`` (a tenant id, or ``OPERATOR``).

    ``consented``: the operator has recorded both parties' consent to be introduced for this
    opportunity (and neither has withdrawn it); a surplus concerns one tenant only. A tenant
    that is not a party is refused: an alert is never rendered for someone it is not about."""
    if isinstance(facts, SurplusFacts):
        return _surplus(facts, audience, language)
    table = TEMPLATES[facts.kind][language]
    if audience == OPERATOR:
        return _operator(facts, table, language)
    if audience == facts.supplier.tenant:
        own, other, role = facts.supplier, facts.receiver, "supplier"
    elif audience == facts.receiver.tenant:
        own, other, role = facts.receiver, facts.supplier, "receiver"
    else:
        raise ValueError(f"tenant {audience!r} is not a party to this opportunity")
    values: dict[str, str] = {
        "resource": resource_name(facts.supplier.resource, language),
        "distance": distance(facts.distance_m, language),
        "quantity": quantity(own.exchanged_per_day, own.unit, language),
        "value": money(own.vnd_per_year, language),
        "ref": facts.ref,
    }
    data: dict[str, Any] = {
        "ref": facts.ref,
        "role": role,
        "resource": facts.supplier.resource,
        "distance_m": round_distance(facts.distance_m),
        "quantity_per_day": round_sig(own.exchanged_per_day),
        "unit": own.unit,
        "value_vnd_per_year": round_sig(own.vnd_per_year),
        "introduced": consented,
    }
    if consented:
        values |= {
            "counterpart": other.tenant,
            "counterpart_name": other.name,
            "counterpart_meter": other.meter,
            "own_meter": own.meter,
        }
        data |= {
            "opportunity_id": facts.opportunity_id,
            "meter": own.meter,
            "counterpart": {"tenant": other.tenant, "name": other.name, "meter": other.meter},
        }
        if other.location is not None:
            data["counterpart"]["location"] = {"x_m": other.location[0], "y_m": other.location[1]}
    variant: Variant = f"{'named' if consented else 'anonymous'}_{role}"  # type: ignore[assignment]
    subject, text = table[variant]
    return Rendered(subject.format(**values), text.format(**values), data, facts.severity)


def _surplus(f: SurplusFacts, audience: str, language: Language) -> Rendered:
    if audience not in (OPERATOR, f.tenant):
        raise ValueError(f"tenant {audience!r} is not a party to this surplus")
    exact = audience == OPERATOR

    def q(x: float | None) -> str:
        return quantity(x or 0.0, f.unit, language, exact=exact) + (
            ("/day" if language == "en" else "/ngày") if exact else ""
        )

    values = {
        "resource": resource_name(f.resource, language),
        "meter": f.meter,
        "tenant": f.tenant,
        "name": f.name,
        "quantity": q(f.per_day),
        "before": q(f.before_per_day),
        "present": str(f.days_present),
        "days": str(f.days),
        "surplus_id": f.surplus_id,
        "ref": f.ref,
    }
    data: dict[str, Any] = {
        "ref": f.ref,
        "surplus_id": f.surplus_id,
        "meter": f.meter,
        "resource": f.resource,
        "unit": f.unit,
        "per_day": f.per_day,
        "before_per_day": f.before_per_day,
        "days_present": f.days_present,
        "days": f.days,
    }
    subject, text = TEMPLATES[f.kind][language]["operator" if exact else "own"]
    return Rendered(subject.format(**values), text.format(**values), data, f.severity)


def _operator(
    facts: OpportunityFacts, table: Mapping[Variant, tuple[str, str]], language: Language
) -> Rendered:
    s, r = facts.supplier, facts.receiver
    values = {
        "resource": resource_name(s.resource, language),
        "supplier": s.tenant,
        "supplier_name": s.name,
        "supplier_meter": s.meter,
        "supplier_per_day": quantity(s.own_per_day, s.unit, language, exact=True),
        "receiver": r.tenant,
        "receiver_name": r.name,
        "receiver_meter": r.meter,
        "receiver_per_day": quantity(r.own_per_day, r.unit, language, exact=True),
        "distance_exact": distance(facts.distance_m, language, exact=True),
        "exchanged": quantity(r.exchanged_per_day, r.unit, language, exact=True),
        "supplier_value": money(s.vnd_per_year, language, exact=True),
        "receiver_value": money(r.vnd_per_year, language, exact=True),
        "park_value": money(facts.park_vnd_per_year, language, exact=True),
        "rule": facts.rule,
        "opportunity_id": facts.opportunity_id,
        "ref": facts.ref,
    }

    def side(x: Side) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenant": x.tenant,
            "name": x.name,
            "meter": x.meter,
            "resource": x.resource,
            "unit": x.unit,
            "own_per_day": x.own_per_day,
            "exchanged_per_day": x.exchanged_per_day,
            "vnd_per_year": x.vnd_per_year,
        }
        if x.location is not None:
            out["location"] = {"x_m": x.location[0], "y_m": x.location[1]}
        return out

    data = {
        "ref": facts.ref,
        "opportunity_id": facts.opportunity_id,
        "rule": facts.rule,
        "distance_m": facts.distance_m,
        "park_vnd_per_year": facts.park_vnd_per_year,
        "supplier": side(s),
        "receiver": side(r),
    }
    subject, text = table["operator"]
    return Rendered(subject.format(**values), text.format(**values), data, facts.severity)


def notification(
    facts: OpportunityFacts | SurplusFacts,
    recipient: Recipient,
    consented: bool,
    language: Language,
    notification_id: str,
    created_at: datetime,
) -> Notification:
    """The notification for ``recipient``: ``render`` for its audience, ready for a channel."""
    if recipient.park != facts.park:
        raise ValueError(f"recipient of park {recipient.park!r}, facts of {facts.park!r}")
    audience = OPERATOR if recipient.is_operator else str(recipient.tenant)
    r = render(facts, audience, consented, language)
    return as_notification(r, notification_id, recipient, facts.kind, language, created_at)


def as_notification(
    r: Rendered,
    notification_id: str,
    recipient: Recipient,
    kind: str,
    language: Language,
    created_at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> Notification:
    """A rendered text as the notification channels send; ``extra``: facts beside it."""
    return Notification(
        id=notification_id,
        recipient=recipient,
        kind=kind,
        subject=r.subject,
        severity=r.severity,
        language=language,
        text=r.text,
        created_at=created_at,
        data={**r.data, **(extra or {})},
    )


def endpoint_disabled(d: Disabled, language: Language) -> Rendered:
    """The operator's alert that a recipient's endpoint was disabled. ``reason`` is the
    channel's own words (an HTTP status, an SMTP reply), shown as they are."""
    r = d.recipient
    who = f"{r.park}/{r.tenant}" if r.tenant is not None else f"{r.park}/operator {r.operator}"
    subject, text = TEMPLATES[ENDPOINT_DISABLED][language]["operator"]
    values = {"channel": d.channel, "who": who, "reason": d.reason}
    data = {
        "park": r.park,
        "tenant": r.tenant,
        "operator": r.operator,
        "channel": d.channel,
        "reason": d.reason,
        "gone": d.gone,
        "at": d.at.isoformat(),
    }
    return Rendered(subject.format(**values), text.format(**values), data, "warning")


# Operators' alerts about data and the system: one wording for every such kind, the kind named
# in the reader's language; ``summary`` is the evaluation's own line (figures, the subject).
CONDITION_OPEN = "condition_open"
CONDITION_RESOLVED = "condition_resolved"
TEMPLATES[CONDITION_OPEN] = {
    "en": {"operator": ("{what}: {subject}", "{what} ({subject}): {summary}.")},
    "vi": {"operator": ("{what}: {subject}", "{what} ({subject}): {summary}.")},
}
TEMPLATES[CONDITION_RESOLVED] = {
    "en": {
        "operator": (
            "Resolved, {what}: {subject}",
            "No longer {what_lower} ({subject}): {summary}.",
        )
    },
    "vi": {
        "operator": ("Đã hết, {what}: {subject}", "Không còn {what_lower} ({subject}): {summary}.")
    },
}

KIND_NAMES: dict[str, dict[Language, str]] = {
    "surplus": {"en": "Surplus", "vi": "Dư thừa"},
    "opportunity": {"en": "Exchange opportunity", "vi": "Cơ hội trao đổi"},
    "meter_stale": {"en": "Meter not reporting", "vi": "Đồng hồ không gửi dữ liệu"},
    "counter_reset": {"en": "Counter reset or rollover", "vi": "Bộ đếm bị đặt lại hoặc quay vòng"},
    "spike": {"en": "Implausible spike", "vi": "Giá trị tăng vọt bất thường"},
    "quarantine_rate": {"en": "Bad data from a tenant", "vi": "Dữ liệu lỗi từ một doanh nghiệp"},
    "ingest_lag": {"en": "Ingest lagging", "vi": "Thu nhận dữ liệu bị chậm"},
    "store_unreachable": {"en": "Store unreachable", "vi": "Không kết nối được kho dữ liệu"},
    ENDPOINT_DISABLED: {"en": "Alert endpoint disabled", "vi": "Kênh cảnh báo bị tắt"},
    "exchange_underperforming": {
        "en": "Exchange below its projection",
        "vi": "Trao đổi thấp hơn dự kiến",
    },
}


def condition(
    kind: str, subject: str, summary: str, resolved: bool, language: Language, severity: Severity
) -> Rendered:
    """An operator's alert about a condition of the data or the system, opened or ended."""
    what = KIND_NAMES.get(kind, {}).get(language) or kind.replace("_", " ")
    values = {
        "what": what,
        "what_lower": what[:1].lower() + what[1:],
        "subject": subject,
        "summary": summary.rstrip("."),
    }
    subject_t, text_t = TEMPLATES[CONDITION_RESOLVED if resolved else CONDITION_OPEN][language][
        "operator"
    ]
    data = {"kind": kind, "subject": subject, "summary": summary, "resolved": resolved}
    return Rendered(subject_t.format(**values), text_t.format(**values), data, severity)


# Facts travel with an alert through the database as JSON: ``facts_json`` and
# ``facts_from_json`` are each other's inverse (a test holds them to it).


DETECTION_FACTS = frozenset(
    {"opportunity", "surplus"}
)  # rendered by ``render``; others are conditions


def facts_json(facts: OpportunityFacts | SurplusFacts) -> dict[str, Any]:
    out = asdict(facts)
    out["type"] = "opportunity" if isinstance(facts, OpportunityFacts) else "surplus"
    return out


def facts_from_json(data: Mapping[str, Any]) -> OpportunityFacts | SurplusFacts:
    values = {k: v for k, v in data.items() if k != "type"}
    if data.get("type") == "opportunity":

        def side(x: Mapping[str, Any]) -> Side:
            loc = x.get("location")
            return Side(**{**x, "location": tuple(loc) if loc is not None else None})

        values["supplier"] = side(values["supplier"])
        values["receiver"] = side(values["receiver"])
        return OpportunityFacts(**values)
    return SurplusFacts(**values)


def notification_json(n: Notification) -> dict[str, Any]:
    """A notification as the outbox keeps it, rendered once: every retry sends these bytes'
    content, whatever the templates or consents say by then."""
    r = n.recipient
    return {
        "id": n.id,
        "park": r.park,
        "tenant": r.tenant,
        "operator": r.operator,
        "kind": n.kind,
        "subject": n.subject,
        "severity": n.severity,
        "language": n.language,
        "text": n.text,
        "created_at": n.created_at.isoformat(),
        "data": dict(n.data),
    }


def notification_from_json(d: Mapping[str, Any]) -> Notification:
    return Notification(
        id=d["id"],
        recipient=Recipient(d["park"], tenant=d["tenant"], operator=d["operator"]),
        kind=d["kind"],
        subject=d["subject"],
        severity=d["severity"],
        language=d["language"],
        text=d["text"],
        created_at=datetime.fromisoformat(d["created_at"]),
        data=d["data"],
    )
