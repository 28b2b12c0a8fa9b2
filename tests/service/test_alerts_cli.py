"""``parkflow alerts``: list, show, ack, resolve, silence and silences, on SQLite and on a real
PostgreSQL, as thin callers of the alert repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parkflow.cli import main
from parkflow.timeunits import now_ms
from service.alerts.kinds import METER_STALE
from service.alerts.lifecycle import Status, observe
from service.alerts.repository import AlertRepository
from service.state import Database

SUBJECT = "p1/t1/m1"


def opened(database: Database, subject: str = SUBJECT) -> str:
    """An open stale-meter alert (it opens after three evaluations), its id."""
    repo = AlertRepository(database)
    t0 = now_ms() - 10_000
    for i in range(3):
        repo.apply([observe(METER_STALE, subject, "p1", "t1", True, "no reading")], t0 + i)
    alert = repo.get(METER_STALE.name, subject)
    assert alert is not None and alert.status is Status.OPEN
    return alert.id


def cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    head, *rest = args
    code = main(["alerts", head, "--database-url", url, *rest])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show_an_open_alert_with_its_history(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = opened(database)
    code, out, _ = cli(capsys, db_url, "list")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:5] == ["id", "status", "severity", "kind", "subject"]
    assert row.split()[:5] == [alert_id[:8], "open", "warning", "meter_stale", SUBJECT]
    code, out, _ = cli(capsys, db_url, "list", "--json")
    (item,) = json.loads(out)
    assert (item["id"], item["status"], item["tenant"]) == (alert_id, "open", "t1")
    code, out, _ = cli(capsys, db_url, "show", alert_id[:8])
    assert code == 0
    assert f"id: {alert_id}" in out and "status: open" in out
    history = out.split("\n\n")[1].splitlines()
    assert history[0].split()[:3] == ["at", "(UTC)", "event"]
    assert history[1].split()[1:3] == ["opened", "pending"]
    code, out, _ = cli(capsys, db_url, "show", alert_id, "--json")
    shown = json.loads(out)
    assert [h["event"] for h in shown["history"]] == ["opened"]


def test_ack_records_who_and_why_and_refuses_twice(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = opened(database)
    args = ("--by", "ops-anna", "--reason", "gateway replaced tomorrow")
    code, out, _ = cli(capsys, db_url, "ack", alert_id[:8], *args)
    assert code == 0 and "is acknowledged" in out
    history = AlertRepository(database).history(alert_id)
    assert [(h["event"], h["actor"], h["reason"]) for h in history][-1] == (
        "acknowledged",
        "ops-anna",
        "gateway replaced tomorrow",
    )
    code, _, err = cli(capsys, db_url, "ack", alert_id, *args)
    assert code == 2 and "only an open alert is acknowledged" in err
    with pytest.raises(SystemExit) as refused:  # argparse: --reason is required
        cli(capsys, db_url, "ack", alert_id, "--by", "ops-anna")
    assert refused.value.code == 2 and "--reason" in capsys.readouterr().err


def test_resolve_by_hand_tells_the_recipient_and_list_all_shows_it(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = opened(database)
    repo = AlertRepository(database)
    before = len(repo.notifications(alert_id))
    code, out, _ = cli(
        capsys, db_url, "resolve", alert_id, "--by", "ops-binh", "--reason", "meter replaced"
    )
    assert code == 0 and "is resolved" in out
    notes = repo.notifications(alert_id)
    assert len(notes) == before + 1 and notes[-1]["payload"]["event"] == "resolved"
    last = repo.history(alert_id)[-1]
    assert (last["event"], last["actor"], last["reason"]) == (
        "resolved",
        "ops-binh",
        "meter replaced",
    )
    code, out, _ = cli(capsys, db_url, "list")
    assert code == 1 and "(none)" in out  # nothing firing
    code, out, _ = cli(capsys, db_url, "list", "--all")
    assert code == 0 and "resolved" in out.splitlines()[1]
    code, _, err = cli(capsys, db_url, "resolve", alert_id, "--by", "x", "--reason", "y")
    assert code == 2 and "only an open or acknowledged alert" in err


def test_silence_and_silences(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, db_url, "silences")
    assert code == 1 and "(none)" in out
    args = ("--by", "ops-anna", "--reason", "maintenance")
    code, out, _ = cli(
        capsys, db_url, "silence", "--kind", "meter_stale", "--until", "2099-01-01", *args
    )
    assert code == 0 and out.startswith("silence ") and "2099-01-01T00:00:00.000Z" in out
    code, out, _ = cli(capsys, db_url, "silences")
    assert code == 0
    row = out.splitlines()[1].split()
    assert row[1:4] == ["meter_stale", "(any)", "2099-01-01T00:00:00.000Z"]
    # a silence in force: the alert still opens, nobody is notified
    alert_id = opened(database, "p1/t1/m2")
    assert AlertRepository(database).notifications(alert_id) == []
    code, _, err = cli(capsys, db_url, "silence", "--subject", "x", "--until", "2001-01-01", *args)
    assert code == 2 and "ends in the future" in err
    code, _, err = cli(capsys, db_url, "silence", "--kind", "nope", "--until", "2099-01-01", *args)
    assert code == 2 and "unknown alert kind 'nope'" in err
    code, _, err = cli(capsys, db_url, "silence", "--until", "2099-01-01", *args)
    assert code == 2 and "names a kind, a subject or both" in err
    (silence,) = AlertRepository(database).silences()
    assert AlertRepository(database).silences(silence["until_ms"]) == []  # none in force after
    code, out, _ = cli(capsys, db_url, "silences", "--all", "--json")
    assert [s["kind"] for s in json.loads(out)] == ["meter_stale"]


def test_ids_that_match_no_alert_or_several_are_refused(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    first = opened(database, "p1/t1/a")
    opened(database, "p1/t1/b")
    code, _, err = cli(capsys, db_url, "show", "ffffffff-0000")
    assert code == 2 and "no alert ffffffff-0000" in err
    code, _, err = cli(capsys, db_url, "show", "'; drop table alerts; --")
    assert code == 2 and "is not an alert id" in err
    code, _, err = cli(capsys, db_url, "show", "")
    assert code == 2
    code, out, _ = cli(capsys, db_url, "show", first)
    assert code == 0 and first in out


def test_a_database_never_migrated_has_no_alerts_and_takes_no_writes(
    blank_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, blank_db_url, "list")
    assert code == 1 and "never migrated" in out
    code, _, err = cli(
        capsys, blank_db_url, "ack", "abc", "--by", "ops-anna", "--reason", "looking"
    )
    assert code == 2 and "run `parkflow db upgrade`" in err


def test_no_embedded_database_yet_is_nothing_to_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARKFLOW_DATABASE_URL", raising=False)
    assert main(["alerts", "list"]) == 1
    assert "never migrated" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # a look creates nothing
