"""Object-level access, pure: what a principal may see of a park's objects.

Every object the API returns names its park and, when it belongs to one, its tenant; these
functions decide on those two fields alone, so the same rule holds for meters, readings,
alerts, surpluses, opportunities and quarantine, whatever a request's path or query says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Role = Literal["operator", "tenant"]
OPERATOR: Role = "operator"
TENANT: Role = "tenant"
SYSTEM = "*"  # the park of an object about the system itself (a store outage)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for. An operator's ``park`` None means every park; a tenant always
    has both."""

    key_id: str
    name: str
    role: Role
    park: str | None
    tenant: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    @property
    def actor(self) -> str:
        """How the principal appears in an alert's history: the key's name and id, never the
        key."""
        return f"{self.name} (key {self.key_id})"


def can_see_park(p: Principal, park: str) -> bool:
    return p.park is None or p.park == park


def can_see_tenant(p: Principal, park: str, tenant: str) -> bool:
    """A tenant's own data: its operator, or the tenant itself."""
    if not can_see_park(p, park):
        return False
    return p.is_operator or p.tenant == tenant


def can_see(p: Principal, park: str | None, tenants: Iterable[str | None]) -> bool:
    """An object of ``park`` concerning ``tenants`` (both parties of an exchange, the one
    tenant of a meter; None for a park-wide object): an operator of the park sees it, a tenant
    only when it is one of them. An object of no park (a store outage) is for operators of every park."""
    if park is None or park == SYSTEM:
        return p.is_operator and p.park is None
    if not can_see_park(p, park):
        return False
    return p.is_operator or p.tenant in set(tenants)


def visible_parks(p: Principal, parks: Iterable[str]) -> list[str]:
    return [park for park in parks if can_see_park(p, park)]
