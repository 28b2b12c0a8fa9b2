"""From (topic, payload) to readings to store and rejections to quarantine. Pure: no I/O.

A batch with some bad readings stores the good ones and quarantines each bad one with its
index; a message that cannot be attributed or parsed is quarantined whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from ingest.parse import Parser, RawReading, get_parser
from ingest.parse.json_payload import BAD_UNIT, NOT_FINITE
from parkflow.errors import PayloadError, UnitError
from parkflow.model import QuarantinedMessage, Reading, Rejection, message_id
from parkflow.registry import Registry, ResolvedMeter
from parkflow.topics import split_topic
from parkflow.units import factor

BAD_TOPIC = "bad_topic"
UNKNOWN_PARK = "unknown_park"
UNKNOWN_TENANT = "unknown_tenant"
UNKNOWN_METER = "unknown_meter"
TOPIC_MISMATCH = "topic_mismatch"
OUT_OF_RANGE = "out_of_range"
FUTURE_TS = "future_ts"
TOO_OLD = "too_old"

# The raw bytes kept of a quarantined message, once per message: enough to read what was
# wrong, never a copy of a huge payload (its full size and hash are kept too).
MAX_KEPT_PAYLOAD = 16 * 1024
MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 512 * 1024
    max_batch: int = 1000
    future_tolerance_ms: int = 5 * 60 * 1000
    horizon_ms: int = 400 * 24 * 3600 * 1000  # oldest accepted reading, relative to now


class Validated(NamedTuple):
    """What one message became: readings to store, and, when something in it was rejected,
    the rejections and the message they point to."""

    readings: list[Reading]
    rejections: list[Rejection]
    message: QuarantinedMessage | None


def quarantined_message(
    topic: str,
    payload: bytes,
    received_ms: int,
    park: str | None = None,
    tenant: str | None = None,
    meter: str | None = None,
    mid: str | None = None,
) -> QuarantinedMessage:
    """The capped record of a message that had something rejected."""
    return QuarantinedMessage(
        mid or message_id(topic, payload),
        topic,
        received_ms,
        payload[:MAX_KEPT_PAYLOAD],
        len(payload),
        park,
        tenant,
        meter,
    )


class Validator:
    """Holds the registry, limits and a topic cache; ``validate`` itself is a pure function of them."""

    def __init__(self, registry: Registry, limits: Limits | None = None, data_format: str = "json"):
        self.registry = registry
        self.limits = limits or Limits()
        self.parser: Parser = get_parser(data_format)
        self._topics: dict[str, ResolvedMeter] = {}

    def resolve(self, topic: str) -> ResolvedMeter:
        hit = self._topics.get(topic)
        if hit is not None:
            return hit
        ids = split_topic(topic)
        if ids is None:
            raise PayloadError(
                BAD_TOPIC, f"topic {topic[:200]!r} is not ip/{{park}}/{{tenant}}/{{meter}}/readings"
            )
        park, tenant, meter = ids
        resolved = self.registry.meter(park, tenant, meter)
        if resolved is None:
            if park not in self.registry.parks:
                raise PayloadError(UNKNOWN_PARK, f"park {park!r} is not in the registry")
            owner = self.registry.owner_of(park, meter)
            if owner is not None:
                raise PayloadError(
                    TOPIC_MISMATCH, f"meter {meter!r} belongs to tenant {owner!r}, not {tenant!r}"
                )
            if not self.registry.has_tenant(park, tenant):
                raise PayloadError(UNKNOWN_TENANT, f"tenant {tenant!r} is not in park {park!r}")
            raise PayloadError(
                UNKNOWN_METER, f"meter {meter!r} is not registered for {park}/{tenant}"
            )
        self._topics[topic] = resolved
        return resolved

    def validate(self, topic: str, payload: bytes, received_ms: int) -> Validated:
        limits = self.limits
        try:
            rm = self.resolve(topic)
        except PayloadError as exc:
            return _rejected_whole(exc, topic, payload, received_ms, None)
        try:
            items = self.parser(payload, limits.max_payload_bytes, limits.max_batch)
        except PayloadError as exc:  # attributable: the topic named a registered meter
            return _rejected_whole(exc, topic, payload, received_ms, rm)
        readings: list[Reading] = []
        bad: list[tuple[PayloadError, int | None]] = []
        lo = received_ms - limits.horizon_ms
        hi = received_ms + limits.future_tolerance_ms
        # The common case inline (in range, meter's own unit, finite after conversion); every
        # other reading goes through ``_check``, which names the problem.
        park, tenant, meter = rm.park.id, rm.tenant.id, rm.meter.id
        resource, direction, unit = rm.meter.resource, rm.meter.direction, rm.meter.unit
        to_canonical, vmin, vmax = rm.to_canonical, rm.value_min, rm.value_max
        isfinite = math.isfinite
        for item in items:
            if type(item) is RawReading:
                ts, value, u = item.ts_ms, item.value, item.unit
                if lo <= ts <= hi and (u is None or u == unit) and vmin <= value <= vmax:
                    canonical = value * to_canonical
                    if isfinite(canonical):
                        readings.append(
                            Reading(
                                park, tenant, meter, resource, direction, ts, canonical, item.seq
                            )
                        )
                        continue
                try:
                    readings.append(self._check(item, rm, lo, hi))
                except PayloadError as exc:
                    bad.append((exc, item.position))
            else:
                assert isinstance(item, PayloadError)
                bad.append((item, item.index))
        if not bad:
            return Validated(readings, [], None)
        message = quarantined_message(topic, payload, received_ms, park, tenant, meter)
        rejections = [_reject(exc, message, index) for exc, index in bad]
        return Validated(readings, rejections, message)

    def check(self, item: RawReading, rm: ResolvedMeter, received_ms: int) -> Reading:
        """One parsed reading against its meter, as for a message; raises ``PayloadError``."""
        lim = self.limits
        return self._check(
            item, rm, received_ms - lim.horizon_ms, received_ms + lim.future_tolerance_ms
        )

    def _check(self, item: RawReading, rm: ResolvedMeter, lo: int, hi: int) -> Reading:
        meter = rm.meter
        if item.ts_ms > hi:
            raise PayloadError(
                FUTURE_TS, f"ts {item.ts_ms} is more than the tolerance ahead of now"
            )
        if item.ts_ms < lo:
            raise PayloadError(TOO_OLD, f"ts {item.ts_ms} is older than the accepted horizon")
        value = item.value
        if item.unit is not None and item.unit != meter.unit:
            try:
                value = value * factor(item.unit, meter.unit)
            except UnitError as exc:
                raise PayloadError(
                    BAD_UNIT, f"{exc} (meter {meter.id} reports {meter.unit})"
                ) from exc
        canonical = value * rm.to_canonical
        if not (math.isfinite(value) and math.isfinite(canonical)):
            # a finite number in a big unit can overflow once converted (1e308 km3 to m3)
            raise PayloadError(
                NOT_FINITE,
                f"value {item.value!r} {item.unit or meter.unit} is not a finite number"
                f" in {meter.canonical_unit}",
            )
        if not rm.value_min <= value <= rm.value_max:
            raise PayloadError(
                OUT_OF_RANGE,
                f"value {value:g} {meter.unit} is outside [{rm.value_min:g}, {rm.value_max:g}]",
            )
        return Reading(
            park=rm.park.id,
            tenant=rm.tenant.id,
            meter=meter.id,
            resource=meter.resource,
            direction=meter.direction,
            ts_ms=item.ts_ms,
            value=canonical,
            seq=item.seq,
        )


def _reject(exc: PayloadError, message: QuarantinedMessage, index: int | None) -> Rejection:
    detail = exc.detail
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    return Rejection(
        exc.reason,
        detail,
        message.topic,
        message.received_ms,
        message.message_id,
        index,
        message.park,
        message.tenant,
        message.meter,
    )


def _rejected_whole(
    exc: PayloadError,
    topic: str,
    payload: bytes,
    received_ms: int,
    rm: ResolvedMeter | None,
) -> Validated:
    ids = (rm.park.id, rm.tenant.id, rm.meter.id) if rm else (None, None, None)
    message = quarantined_message(topic, payload, received_ms, *ids)
    return Validated([], [_reject(exc, message, None)], message)
