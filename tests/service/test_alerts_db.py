"""Alerts in the operational database, on SQLite and on a real PostgreSQL: migrations, the
service's refusal of an old schema, one alert per (kind, subject) under concurrent evaluators,
history, silences, restarts, and notifications committed with their alert or not at all."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from parkflow.errors import ConfigError, InputError
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.store import SqliteStore
from service.alerts.evaluate import AlertPolicy, evaluate_alerts
from service.alerts.kinds import METER_STALE, SURPLUS, Kind, Policy
from service.alerts.lifecycle import Alert, Event, Observation, Status, Transition, observe
from service.alerts.notify import Outgoing
from service.alerts.repository import AlertRepository
from service.state import Database, current_revision, head_revision, require_current, upgrade
from service.state.tables import alert_history, alerts, metadata, outbox
from tests.support.registries import build, meter, park, tenant

SUBJECT = "p1/t1/m1"


def stale(holds: bool) -> list[Observation]:
    return [observe(METER_STALE, SUBJECT, "p1", "t1", holds, "no reading")]


def test_migrations_produce_the_tables_the_code_queries(blank_db_url: str) -> None:
    db = Database(blank_db_url)
    try:
        assert current_revision(db) is None
        needs = rf"needs {head_revision()}: run `parkflow db upgrade`"
        with pytest.raises(ConfigError, match=needs):
            require_current(db)
        assert upgrade(db) == (None, head_revision())
        require_current(db)
        assert upgrade(db) == (head_revision(), head_revision())  # a second upgrade: nothing
        with db.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
    finally:
        db.close()


def test_the_service_refuses_an_unmigrated_database_and_hides_its_password(
    blank_db_url: str, tmp_path: Path
) -> None:
    from service.app import serve
    from service.settings import ServiceSettings

    url = blank_db_url.replace("postgres@", "postgres:s3cret@")
    settings = ServiceSettings(registry=tmp_path / "unused.yaml", database_url=url)
    with pytest.raises(ConfigError) as caught:
        serve(settings)
    text = str(caught.value)
    assert "run `parkflow db upgrade`" in text and "s3cret" not in text


def test_two_concurrent_evaluators_open_one_alert(db_url: str) -> None:
    subjects = [f"p1/t1/m{i}" for i in range(20)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluator() -> None:
        db = Database(db_url)
        repo = AlertRepository(db)
        try:
            for subject in subjects:
                barrier.wait()
                repo.apply([observe(SURPLUS, subject, "p1", "t1", True, "found")], 1000)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            db.close()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    db = Database(db_url)
    repo = AlertRepository(db)
    try:
        with db.connect() as conn:
            n_alerts = conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar()
            n_out = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar()
        assert n_alerts == len(subjects)
        # one "found" each (to the supplier and to the operators), not two
        assert n_out == 2 * len(subjects)
        for subject in subjects:
            found = repo.get(SURPLUS.name, subject)
            assert found is not None
            assert [h["event"] for h in repo.history(found.id)] == ["opened"]
    finally:
        db.close()


def test_a_flapping_condition_opens_one_alert(database: Database) -> None:
    repo = AlertRepository(database)
    for t, holds in enumerate([True, True, True, False, True, False, True, True], start=1):
        repo.apply(stale(holds), t * 1000)
    alert = repo.get(METER_STALE.name, SUBJECT)
    assert alert is not None and alert.status is Status.OPEN
    assert [h["event"] for h in repo.history(alert.id)] == ["opened"]
    assert len(repo.notifications(alert.id)) == 1


def test_a_stale_meter_opens_and_its_return_resolves(database: Database, tmp_path: Path) -> None:
    registry = build(
        park("p1", tenant("t1", meter("m1", "water.potable", "in", "m3", "cumulative")))
    )
    store = SqliteStore(tmp_path / "store.sqlite")
    repo = AlertRepository(database)
    hour = 3_600_000
    t0 = 1_800_000_000_000

    def write(ts: int) -> None:
        r = Reading("p1", "t1", "m1", "water.potable", Direction.IN, ts, 1.0)
        store.write(WriteBatch((r,)))

    try:
        write(t0)
        policy = AlertPolicy(stale_factor=3.0)
        for i in range(1, 8):  # stale from 3 h on; opens after 3 evaluations in a row
            evaluate_alerts(repo, store, registry, None, t0 + (2 + i) * hour, policy)
        alert = repo.get(METER_STALE.name, SUBJECT)
        assert alert is not None and alert.status is Status.OPEN
        write(t0 + 10 * hour)
        for i in range(2):  # resolves after 2 fresh evaluations
            evaluate_alerts(repo, store, registry, None, t0 + 10 * hour + (i + 1) * 60_000, policy)
        alert = repo.get(METER_STALE.name, SUBJECT)
        assert alert is not None and alert.status is Status.RESOLVED
        assert [h["event"] for h in repo.history(alert.id)] == ["opened", "resolved"]
        told = repo.notifications(alert.id)  # the operators' only: a data-quality kind
        assert [(n["payload"]["event"], n["recipient"]) for n in told] == [
            ("opened", "p1/operator/operators"),
            ("resolved", "p1/operator/operators"),
        ]
        body = told[0]["payload"]["notification"]
        assert body["subject"] == f"Meter not reporting: {SUBJECT}"
        assert body["text"].startswith(f"Meter not reporting ({SUBJECT}): ")
    finally:
        store.close()


def test_acknowledge_records_who_and_why(database: Database) -> None:
    repo = AlertRepository(database)
    (applied,) = repo.apply([observe(SURPLUS, "s1", "p1", "t1", True, "found")], 1000)
    acked = repo.acknowledge(applied.alert.id, "ops-binh", "talking to the tenant", 2000)
    assert acked.status is Status.ACKNOWLEDGED
    last = repo.history(acked.id)[-1]
    assert (last["event"], last["actor"], last["reason"], last["at_ms"]) == (
        "acknowledged",
        "ops-binh",
        "talking to the tenant",
        2000,
    )
    with pytest.raises(InputError, match="only an open alert"):
        repo.acknowledge(acked.id, "ops-binh", "again", 3000)


def test_a_silence_suppresses_notifications_but_keeps_the_alert(database: Database) -> None:
    repo = AlertRepository(database)
    repo.silence(kind=SURPLUS.name, subject=None, until_ms=5000, by="ops", reason="audit", now_ms=1)
    (applied,) = repo.apply([observe(SURPLUS, "s1", "p1", "t1", True, "found")], 1000)
    assert applied.alert.status is Status.OPEN and applied.notifications == ()
    assert repo.history(applied.alert.id)[0]["silenced"] is True
    repo.apply([observe(SURPLUS, "s1", "p1", "t1", False)], 6000)  # silence over: told
    assert [
        n["payload"]["event"]
        for n in repo.notifications(applied.alert.id)
        if n["recipient"] == "p1/t1"
    ] == ["resolved"]


def test_state_survives_reopening_the_engine(db_url: str) -> None:
    db = Database(db_url)
    policy_kinds = {METER_STALE.name: dataclasses.replace(METER_STALE, policy=Policy(2, 2))}
    try:
        AlertRepository(db, policy_kinds).apply(stale(True), 1000)  # pending: 1 of 2
    finally:
        db.close()
    db = Database(db_url)  # a restart
    try:
        repo = AlertRepository(db, policy_kinds)
        (applied,) = repo.apply(stale(True), 2000)
        assert applied.transitions[0].event is Event.OPENED  # the pending count was kept
        assert len(repo.notifications()) == 1
    finally:
        db.close()


def test_an_alert_and_its_notifications_commit_together_or_not_at_all(
    database: Database,
) -> None:
    def broken(conn: Connection, alert: Alert, kind: Kind, step: Transition) -> list[Outgoing]:
        raise RuntimeError("notifier failed after the alert was written")

    repo = AlertRepository(database, notifier=broken)
    with pytest.raises(RuntimeError):
        repo.apply([observe(SURPLUS, "s1", "p1", "t1", True, "found")], 1000)
    ok = AlertRepository(database)
    assert ok.get(SURPLUS.name, "s1") is None and ok.notifications() == []
    (applied,) = ok.apply([observe(SURPLUS, "s1", "p1", "t1", True, "found")], 1000)
    # the supplier's own topic and the park's operators'
    assert [n["recipient"] for n in ok.notifications(applied.alert.id)] == [
        "p1/t1",
        "p1/operator/operators",
    ]


def test_a_large_evaluation_points_each_notification_at_its_own_step(database: Database) -> None:
    """An evaluation's history is written many rows a statement (in chunks): every outbox row
    must still name the history row of its own alert and step."""
    repo = AlertRepository(database)
    n = 1_250  # more than one chunk of history rows
    found = [observe(SURPLUS, f"s{i:04d}", "p1", f"t{i % 7}", True, f"found {i}") for i in range(n)]
    opened = repo.apply(found, 1_000)
    resolved = repo.apply([dataclasses.replace(o, holds=False) for o in found], 2_000)
    assert len(opened) == len(resolved) == n
    with database.connect() as conn:
        rows = conn.execute(
            sa.select(
                outbox.c.alert_id,
                outbox.c.payload,
                alert_history.c.alert_id.label("h"),
                alert_history.c.event,
            ).join(alert_history, alert_history.c.id == outbox.c.history_id)
        ).all()
    assert len(rows) == 2 * n * 2  # opened and resolved, to the supplier and the operators
    assert all(r.alert_id == r.h and r.payload["event"] == r.event for r in rows)
    for a in resolved[::97]:  # and a sample through the repository
        assert [h["event"] for h in repo.history(a.alert.id)] == ["opened", "resolved"]
        assert {x["history_id"] for x in repo.notifications(a.alert.id)} == {
            h["id"] for h in repo.history(a.alert.id)
        }
