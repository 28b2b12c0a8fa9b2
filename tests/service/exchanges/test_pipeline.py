"""Stage transitions: the allowed ones recorded with who and when, impossible ones refused with
a message that says what is allowed, and the projection frozen at agreement."""

from __future__ import annotations

import pytest

from parkflow.errors import InputError
from service.exchanges.pipeline import (
    Barrier,
    Projection,
    Stage,
    move,
    start,
    update_projection,
)

PROJ = Projection(240.0, 176_000_000, 80_000_000, 96_000_000)


def test_an_exchange_goes_from_idea_to_verified_with_each_move_recorded() -> None:
    pipe, first = start("ops-lan", "ops-lan", 1000, barrier=Barrier.LEGAL, projection=PROJ)
    assert (first.to_stage, first.by, first.at_ms) == (Stage.IDENTIFIED, "ops-lan", 1000)
    moves = []
    for i, stage in enumerate(
        [Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING, Stage.VERIFIED]
    ):
        pipe, m = move(pipe, stage, "ops-binh", 2000 + i)
        moves.append((m.from_stage, m.to_stage, m.by, m.at_ms))
    assert pipe.stage is Stage.VERIFIED and pipe.frozen
    assert moves[2] == (Stage.UNDER_STUDY, Stage.AGREED, "ops-binh", 2002)


@pytest.mark.parametrize(
    ("path", "to", "message"),
    [
        ([], Stage.OPERATING, "cannot move from identified to operating; .* screened"),
        ([Stage.REJECTED], Stage.AGREED, "from rejected to agreed; .* identified"),
        (
            [Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING, Stage.ENDED],
            Stage.OPERATING,
            r"from ended to operating; .* none \(it has ended\)",
        ),
    ],
)
def test_impossible_moves_are_refused_with_what_is_allowed(
    path: list[Stage], to: Stage, message: str
) -> None:
    pipe, _ = start("ops", "ops", 0, projection=PROJ)
    for stage in path:
        pipe, _ = move(pipe, stage, "ops", 1, note="why")
    with pytest.raises(InputError, match=message):
        move(pipe, to, "ops", 2, note="why")


def test_rejecting_or_ending_needs_a_reason_and_keeps_it() -> None:
    pipe, _ = start("ops", "ops", 0)
    with pytest.raises(InputError, match="needs a reason"):
        move(pipe, Stage.REJECTED, "ops", 1)
    rejected, _ = move(pipe, Stage.REJECTED, "ops", 1, note="QCVN 40 column A not met")
    assert rejected.reason == "QCVN 40 column A not met"


def test_agreement_needs_a_projection_and_freezes_it() -> None:
    pipe, _ = start("ops", "ops", 0)
    pipe, _ = move(pipe, Stage.SCREENED, "ops", 1)
    pipe, _ = move(pipe, Stage.UNDER_STUDY, "ops", 2)
    with pytest.raises(InputError, match="with a projection"):
        move(pipe, Stage.AGREED, "ops", 3)
    pipe = update_projection(pipe, PROJ)
    agreed, _ = move(pipe, Stage.AGREED, "ops", 3)
    later = Projection(100.0, 1, 1, 1)
    assert update_projection(agreed, later).projection == PROJ  # frozen: a new run moves nothing
    reopened, _ = move(agreed, Stage.UNDER_STUDY, "ops", 4)
    assert update_projection(reopened, later).projection == later


def test_moves_are_not_dated_before_the_stage_and_say_who() -> None:
    pipe, _ = start("ops", "ops", 100)
    with pytest.raises(InputError, match="dated before"):
        move(pipe, Stage.SCREENED, "ops", 99)
    with pytest.raises(InputError, match="who made it"):
        move(pipe, Stage.SCREENED, " ", 200)
    with pytest.raises(InputError, match="supplier and receiver named"):
        p = update_projection(pipe, PROJ)
        for s in (Stage.SCREENED, Stage.UNDER_STUDY):
            p, _ = move(p, s, "ops", 200)
        move(p, Stage.AGREED, "ops", 200, has_parties=False)
