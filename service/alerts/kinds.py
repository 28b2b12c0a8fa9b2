"""What parkflow alerts about: each kind with who hears of it, the shape of its subject, its
default severity and the hysteresis it is evaluated with.

Detection runs are hourly over weeks of data, already smooth: their kinds open and resolve on
the first evaluation. Data-quality signals flap (a gateway that reports late every other
cycle), so theirs wait for the condition to hold, and to clear, for a few evaluations, as
Prometheus' ``for`` and ``keep_firing_for`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parkflow.timeunits import HOUR_MS


class Audience(StrEnum):
    SUPPLIER = "supplier"  # the tenant whose surplus it is
    RECEIVER = "receiver"  # the tenant that could take it
    OPERATORS = "operators"  # the park's operators: data quality, the system itself
    PARTIES = "parties"  # both tenants of a registered exchange (named in its facts)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Policy:
    """Hysteresis and reminders: open after the condition held for ``open_after``
    evaluations in a row, resolve after it cleared for ``resolve_after``; remind of an open,
    unacknowledged alert every ``repeat_ms`` (``None``: never)."""

    open_after: int = 1
    resolve_after: int = 1
    repeat_ms: int | None = None

    def __post_init__(self) -> None:
        if self.open_after < 1 or self.resolve_after < 1:
            raise ValueError("open_after and resolve_after count evaluations: at least 1")
        if self.repeat_ms is not None and self.repeat_ms <= 0:
            raise ValueError("repeat_ms must be positive")


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    audience: Audience
    subject: str  # the shape of the subject id, e.g. "park/tenant/meter"
    severity: Severity
    policy: Policy


_DETECTION = Policy(open_after=1, resolve_after=1, repeat_ms=None)
_DATA = Policy(open_after=3, resolve_after=2, repeat_ms=24 * HOUR_MS)
_SYSTEM = Policy(open_after=2, resolve_after=2, repeat_ms=4 * HOUR_MS)

# to a supplier: its surplus found (opened), grown or shrunk (updated), ended (resolved)
SURPLUS = Kind("surplus", Audience.SUPPLIER, "surplus id", Severity.INFO, _DETECTION)
# to a receiver: an opportunity for it, found and gone
OPPORTUNITY = Kind("opportunity", Audience.RECEIVER, "opportunity id", Severity.INFO, _DETECTION)
# to operators: data quality
METER_STALE = Kind("meter_stale", Audience.OPERATORS, "park/tenant/meter", Severity.WARNING, _DATA)
COUNTER_RESET = Kind(
    "counter_reset", Audience.OPERATORS, "park/tenant/meter", Severity.WARNING, _DATA
)
SPIKE = Kind("spike", Audience.OPERATORS, "park/tenant/meter", Severity.WARNING, _DATA)
QUARANTINE_RATE = Kind(
    "quarantine_rate", Audience.OPERATORS, "park/tenant", Severity.WARNING, _DATA
)
# the park as a whole behind: even its freshest meter's newest reading is old
INGEST_LAG = Kind("ingest_lag", Audience.OPERATORS, "park", Severity.WARNING, _SYSTEM)
STORE_UNREACHABLE = Kind(
    "store_unreachable", Audience.OPERATORS, "store", Severity.CRITICAL, _SYSTEM
)
# to operators: a recipient's webhook, mailbox or topic failed too long (or said 410) and was
# disabled; its subject is "channel endpoint"
ENDPOINT_DISABLED = Kind(
    "endpoint_disabled", Audience.OPERATORS, "channel endpoint", Severity.WARNING, _DETECTION
)

# to operators and both parties: an operating exchange delivering less than a share of its
# frozen projection for N measured days (service/exchanges/alerts.py)
EXCHANGE_UNDERPERFORMING = Kind(
    "exchange_underperforming", Audience.PARTIES, "exchange id", Severity.WARNING, _DETECTION
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        SURPLUS,
        OPPORTUNITY,
        METER_STALE,
        COUNTER_RESET,
        SPIKE,
        QUARANTINE_RATE,
        INGEST_LAG,
        STORE_UNREACHABLE,
        ENDPOINT_DISABLED,
        EXCHANGE_UNDERPERFORMING,
    )
}
