"""The pipeline an exchange goes through, from an idea to verified savings, as pure rules.

A park's workshops end with a list of "highest-potential" exchanges to study; most stall on a
barrier (a permit, a price, a tenant's consent) and few are followed up once they run. The
stages make that visible: each move is an operator's decision, recorded with who and when, and
a move the process does not allow (a rejected idea becoming operating overnight) is refused,
so the history stays one a park's auditor can follow.

Reaching ``agreed`` freezes the projection (the opportunity's figures at that moment): it is the
baseline realised savings are compared with, and later detection runs do not move it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from parkflow.errors import InputError


class Stage(StrEnum):
    IDENTIFIED = "identified"  # from detection, or entered from a workshop
    SCREENED = "screened"  # legal and technical screen passed
    UNDER_STUDY = "under_study"  # feasibility: economics, environmental and social benefits
    AGREED = "agreed"  # the parties agreed: the projection is frozen
    OPERATING = "operating"  # resource flowing, metered
    VERIFIED = "verified"  # realised savings verified over a reporting period
    REJECTED = "rejected"  # dropped before it ran, with a reason
    ENDED = "ended"  # stopped after it ran, with a reason


class Barrier(StrEnum):
    LEGAL = "legal"
    TECHNICAL = "technical"
    COMMERCIAL = "commercial"
    CONSENT = "consent"  # a party has not agreed to share or to be named


# Forward one step at a time; back one step when a study reopens a question; out with a reason.
# A verified exchange keeps operating and may be verified again for the next period.
MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.IDENTIFIED: frozenset({Stage.SCREENED, Stage.REJECTED}),
    Stage.SCREENED: frozenset({Stage.UNDER_STUDY, Stage.IDENTIFIED, Stage.REJECTED}),
    Stage.UNDER_STUDY: frozenset({Stage.AGREED, Stage.SCREENED, Stage.REJECTED}),
    Stage.AGREED: frozenset({Stage.OPERATING, Stage.UNDER_STUDY, Stage.REJECTED}),
    Stage.OPERATING: frozenset({Stage.VERIFIED, Stage.ENDED}),
    Stage.VERIFIED: frozenset({Stage.OPERATING, Stage.ENDED}),
    Stage.REJECTED: frozenset({Stage.IDENTIFIED}),  # reopened: a barrier has gone
    Stage.ENDED: frozenset(),
}
NEEDS_REASON = frozenset({Stage.REJECTED, Stage.ENDED})
FREEZES = Stage.AGREED
# from agreed on an exchange has parties bound to it: it needs both sides named
NEEDS_PARTIES = frozenset({Stage.AGREED, Stage.OPERATING, Stage.VERIFIED})


@dataclass(frozen=True, slots=True)
class Projection:
    """What the opportunity promised when the parties agreed: the baseline of M&V. Money in
    integer dong per year, quantities per day in the exchange's unit."""

    quantity_per_day: float
    park_vnd_per_year: int
    supplier_vnd_per_year: int
    receiver_vnd_per_year: int
    co2e_t_per_year: float = 0.0
    water_m3_per_year: float = 0.0
    landfill_t_per_year: float = 0.0


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Where an exchange stands. ``projection`` is the opportunity's current figures until
    ``frozen`` (from agreed on), then the baseline."""

    stage: Stage
    owner: str
    barrier: Barrier | None = None
    legal_status: str = "unknown"
    notes: str = ""
    reason: str | None = None  # why it was rejected or ended
    projection: Projection | None = None
    frozen: bool = False
    stage_ms: int = 0  # when it reached its stage


@dataclass(frozen=True, slots=True)
class Move:
    """One recorded move: who, when, from where to where, and why."""

    at_ms: int
    by: str
    from_stage: Stage | None
    to_stage: Stage
    note: str = ""


def start(owner: str, by: str, at_ms: int, **fields: object) -> tuple[Pipeline, Move]:
    """A new exchange, identified by ``by``."""
    if not owner.strip() or not by.strip():
        raise InputError("an exchange has an owner, and its creation says who entered it")
    pipeline = dataclasses.replace(
        Pipeline(Stage.IDENTIFIED, owner, stage_ms=at_ms),
        **fields,  # type: ignore[arg-type]
    )
    return pipeline, Move(at_ms, by, None, Stage.IDENTIFIED, pipeline.notes)


def move(
    current: Pipeline,
    to: Stage,
    by: str,
    at_ms: int,
    *,
    note: str = "",
    has_parties: bool = True,
) -> tuple[Pipeline, Move]:
    """The exchange at ``to``, or ``InputError`` saying why it cannot go there."""
    if not by.strip():
        raise InputError("a move says who made it")
    if to not in MOVES[current.stage]:
        allowed = ", ".join(sorted(MOVES[current.stage])) or "none (it has ended)"
        raise InputError(
            f"an exchange cannot move from {current.stage} to {to}; from {current.stage} it"
            f" may move to: {allowed}"
        )
    if to in NEEDS_REASON and not note.strip():
        raise InputError(f"moving an exchange to {to} needs a reason")
    if at_ms < current.stage_ms:
        raise InputError("a move cannot be dated before the exchange reached its stage")
    if to in NEEDS_PARTIES and not has_parties:
        raise InputError(f"an exchange reaches {to} only with its supplier and receiver named")
    if to is FREEZES and current.projection is None:
        raise InputError(
            "an exchange reaches agreed with a projection (its opportunity's figures): it is"
            " the baseline its savings are compared with"
        )
    frozen = current.frozen or to is FREEZES
    if to in (Stage.UNDER_STUDY, Stage.SCREENED, Stage.IDENTIFIED, Stage.REJECTED):
        frozen = False  # the agreement was reopened: the next agreement freezes anew
    nxt = dataclasses.replace(
        current,
        stage=to,
        stage_ms=at_ms,
        frozen=frozen,
        reason=note if to in NEEDS_REASON else None,
    )
    return nxt, Move(at_ms, by, current.stage, to, note)


def update_projection(current: Pipeline, projection: Projection) -> Pipeline:
    """A newer detection run's figures: taken before agreement, ignored once frozen."""
    if current.frozen:
        return current
    return dataclasses.replace(current, projection=projection)
