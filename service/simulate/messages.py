"""The generated series as the MQTT messages gateways would send, with the message faults
real gateways produce (re-sent tails, a message sent twice, shuffled and late batches), and
what the ingestor must make of them: ``plan_messages`` counts what it must store and
quarantine, so the end-to-end test can prove nothing was lost. Pure."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from parkflow.topics import topic_for
from service.simulate.flows import (
    MAX_BATCH,
    MESSAGE_FAULTS,
    AppliedFault,
    Fault,
    Series,
    fault_time,
)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    meter: str
    readings: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The messages to publish, in order, and what the ingestor must make of them."""

    messages: tuple[Message, ...]
    readings_sent: int
    unique_good: int  # distinct (meter, ts) good readings: what the store must hold
    duplicates: int  # good readings sent more than once: stored once
    quarantined: Mapping[str, int]  # bad readings sent, by the reason they must get
    faults: tuple[AppliedFault, ...]


Item = tuple[int, float, str | None, int]  # ts, value, quarantine reason or None, seq


def plan_messages(
    series: Sequence[Series],
    faults: Sequence[Fault] = (),
    *,
    end_ms: int,
    seed: int = 0,
    batch: int = MAX_BATCH,
) -> Plan:
    """Batch each meter's readings into JSON arrays (<= ``batch`` readings), apply message
    faults, and interleave the meters' gateways round-robin, as a park's backfill arrives."""
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be 1..{MAX_BATCH}")
    shuffler = random.Random(seed)
    per_meter: list[list[Message]] = []
    late: list[Message] = []
    notes: list[AppliedFault] = []
    sent = good_sent = 0
    good: set[tuple[str, int]] = set()
    reasons: Counter[str] = Counter()
    for s in series:
        if len(s.ts) == 0:
            continue
        mine = {f.kind: f for f in faults if f.meter == s.meter and f.kind in MESSAGE_FAULTS}
        items: list[Item] = [
            (int(t), float(v), s.bad.get(i), i)
            for i, (t, v) in enumerate(zip(s.ts, s.values, strict=True))
        ]
        overlap = min(mine["duplicate"].count, batch // 2) if "duplicate" in mine else 0
        chunks = _chunks(items, batch, overlap)
        first, last = int(s.ts.min()), int(s.ts.max())
        if overlap and len(chunks) > 1:
            notes.append(
                AppliedFault(
                    "duplicate",
                    s.meter,
                    chunks[1][0][0],
                    chunks[-1][0][0],
                    overlap * (len(chunks) - 1),
                    f"each batch re-sends the previous batch's last {overlap} readings:"
                    " stored once",
                )
            )
        order = list(range(len(chunks)))
        if "out_of_order" in mine and len(chunks) > 1:
            order.reverse()
            for c in chunks:
                shuffler.shuffle(c)
            notes.append(
                AppliedFault(
                    "out_of_order",
                    s.meter,
                    first,
                    last,
                    len(items),
                    "batches sent newest first, readings shuffled: same quantities",
                )
            )
        if "resend" in mine:
            at = fault_time(mine["resend"], end_ms)
            k = next((k for k, c in enumerate(chunks) if max(r[0] for r in c) >= at), 0)
            order.insert(order.index(k) + 1, k)
            times = [r[0] for r in chunks[k]]
            notes.append(
                AppliedFault(
                    "resend",
                    s.meter,
                    min(times),
                    max(times),
                    len(times),
                    "a whole message sent twice: stored once",
                )
            )
        for k in order:
            for t, _, reason, _ in chunks[k]:
                sent += 1
                if reason is None:
                    good.add((s.meter, t))
                    good_sent += 1
                else:
                    reasons[reason] += 1
        msgs = [_message(s, chunks[k]) for k in order]
        if "late" in mine:
            late += msgs
            notes.append(
                AppliedFault(
                    "late",
                    s.meter,
                    first,
                    last,
                    len(items),
                    "the gateway's backlog arrives after every other meter's: same quantities",
                )
            )
        else:
            per_meter.append(msgs)
    ordered: list[Message] = []
    longest = max((len(m) for m in per_meter), default=0)
    for k in range(longest):
        ordered += [m[k] for m in per_meter if k < len(m)]
    ordered += late
    return Plan(
        messages=tuple(ordered),
        readings_sent=sent,
        unique_good=len(good),
        duplicates=good_sent - len(good),
        quarantined=dict(reasons),
        faults=tuple(notes),
    )


def _chunks(items: list[Item], batch: int, overlap: int) -> list[list[Item]]:
    """Consecutive batches; each after the first starts with the previous one's last
    ``overlap`` readings (a gateway re-sending what it was not sure had arrived)."""
    chunks: list[list[Item]] = []
    pos = 0
    while pos < len(items):
        head = items[max(0, pos - overlap) : pos] if chunks else []
        body = items[pos : pos + batch - len(head)]
        chunks.append(head + body)
        pos += len(body)
    return chunks


def _message(s: Series, chunk: Sequence[Item]) -> Message:
    body = [{"ts": t, "value": v, "seq": i} for t, v, _, i in chunk]
    payload = json.dumps(body, separators=(",", ":")).encode()
    return Message(topic_for(s.park, s.tenant, s.meter), payload, s.meter, len(chunk))
