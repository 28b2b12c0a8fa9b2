"""What a tenant is shown of objects that concern another tenant too. Pure.

An exchange has two parties; until both consented to be introduced a tenant sees its own side
only, through the one function that keeps that rule for alerts (``service.alerts.texts.
render``): no counterpart id, name, meter, quantity or position, a distance rounded to 100 m,
its own quantity and money to two significant figures, and an opaque reference to quote to the
operator. Fields are chosen by a whitelist, so a field added to a stored opportunity later is
not shown to tenants until someone decides it may be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from service.alerts.channels.base import Language
from service.alerts.lifecycle import Alert
from service.alerts.texts import OpportunityFacts, Side, render, round_sig
from service.events import OPPORTUNITY_NEW

Ref = Callable[[str], str]  # an opportunity id -> its opaque reference

# Kinds whose subject and summary name another tenant: shown to a tenant by reference only.
OPPORTUNITY_KINDS = frozenset({"opportunity"})

# Of a stored opportunity, what a tenant may see as it is: the rule's, not a party's.
_SHARED = ("rank", "rule", "coupling", "legal_status", "legal", "checks", "days")


class Consents(Protocol):
    """Whether both parties of an opportunity consented to be introduced: the operational
    database's consents (``service.alerts.consents.ConsentRepository``) in the service."""

    def introduced(self, opportunity_id: str, parties: tuple[str, str]) -> bool: ...

    def introduced_among(self, parties: Mapping[str, tuple[str, str]]) -> set[str]: ...


def facts(o: Mapping[str, Any], ref: str, names: Mapping[str, str]) -> OpportunityFacts:
    """An opportunity as stored (``ResultsDb.opportunities``) as the facts alerts render."""
    value = o.get("value") or {}
    # each side's own gain at the transfer price, as the alerts and the explanation say it
    finance = value.get("finance") or {}
    supplier_vnd = finance.get("supplier_net_vnd_per_year", value.get("supplier_vnd_per_year"))
    receiver_vnd = finance.get("receiver_net_vnd_per_year", value.get("receiver_vnd_per_year"))
    return OpportunityFacts(
        kind=OPPORTUNITY_NEW,
        park=o["park"],
        ref=ref,
        opportunity_id=o["id"],
        rule=o["rule"],
        supplier=Side(
            o["from_tenant"],
            names.get(o["from_tenant"], o["from_tenant"]),
            o["from_meter"],
            o["supply_resource"],
            o["supply_unit"],
            float(o["supply_p50_per_day"] or 0.0),
            float(o["supply_used_per_day"] or 0.0),
            float(supplier_vnd or 0.0),
        ),
        receiver=Side(
            o["to_tenant"],
            names.get(o["to_tenant"], o["to_tenant"]),
            o["to_meter"],
            o["demand_resource"],
            o["demand_unit"],
            float(o["demand_per_day"] or 0.0),
            float(o["matched_per_day"] or 0.0),
            float(receiver_vnd or 0.0),
        ),
        distance_m=float(o["distance_m"] or 0.0),
        park_vnd_per_year=float(value.get("park_vnd_per_year") or 0.0),
    )


def tenant_opportunity(
    o: Mapping[str, Any],
    tenant: str,
    ref: str,
    names: Mapping[str, str],
    introduced: bool,
    language: Language = "en",
) -> dict[str, Any]:
    """One opportunity as ``tenant`` (a party to it) may see it."""
    rendered = render(facts(o, ref, names), tenant, introduced, language)
    out: dict[str, Any] = {k: o[k] for k in _SHARED if k in o}
    out.update(rendered.data)
    out["park"] = o["park"]
    out["explanation"] = rendered.text
    if introduced:  # both consented: the operator's whole record
        out["id"] = o["id"]
    return out


def tenant_plan_link(
    link: Mapping[str, Any], tenant: str, ref: str, introduced: bool
) -> dict[str, Any]:
    """A link of the plan as a party sees it: its own planned quantity, not the park's
    figures (they are the sum of both sides and would give the counterpart's away)."""
    role = "supplier" if link["from_tenant"] == tenant else "receiver"
    own = link["supply_used_per_day"] if role == "supplier" else link["matched_per_day"]
    if not introduced:  # as its alerts say it: the exact figure could be the other's need
        own = round_sig(float(own or 0.0))
    unit = link["supply_unit"] if role == "supplier" else link["demand_unit"]
    out: dict[str, Any] = {
        "ref": ref,
        "park": link["park"],
        "rule": link["rule"],
        "rank": link["rank"],
        "role": role,
        "planned_per_day": own,
        "unit": unit,
        "introduced": introduced,
    }
    if introduced:
        out["opportunity_id"] = link["opportunity_id"]
        out["counterpart"] = link["to_tenant"] if role == "supplier" else link["from_tenant"]
    return out


def alert_view(a: Alert, tenant_view: bool, ref: Ref) -> dict[str, Any]:
    """An alert as the API shows it; to a tenant, an alert about an exchange names it by
    reference only (its subject is the opportunity id, its summary names the supplier)."""
    out: dict[str, Any] = {
        "id": a.id,
        "kind": a.kind,
        "subject": a.subject,
        "park": a.park,
        "tenant": a.tenant,
        "severity": a.severity.value,
        "status": a.status.value if a.status else None,
        "summary": a.summary,
        "opened_ms": a.opened_ms,
        "acknowledged_ms": a.acknowledged_ms,
        "acknowledged_by": a.acknowledged_by,
        "resolved_ms": a.resolved_ms,
        "evaluated_ms": a.evaluated_ms,
    }
    if tenant_view and a.kind in OPPORTUNITY_KINDS:
        reference = ref(a.subject)
        out["subject"] = reference
        out["summary"] = (
            f"an exchange opportunity for you, reference {reference}: see your opportunities"
        )
    return out
