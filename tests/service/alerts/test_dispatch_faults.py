"""Faults around the dispatcher: killed with SIGKILL between sending and recording, and its
database restarted mid-dispatch. Receiver-side deduplication by ``webhook-id`` turns
at-least-once into exactly-once effect; nothing is ever lost."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.alerts.backoff import BackoffPolicy
from service.alerts.contacts import parse_contacts
from service.alerts.dispatch import Dispatcher
from service.alerts.kinds import SURPLUS
from service.alerts.lifecycle import observe
from service.alerts.notify import ContactsNotifier
from service.alerts.repository import AlertRepository
from service.alerts.routing import ContactChannels
from service.state import Database, upgrade
from service.state.tables import outbox
from tests.service.alerts.build import SECRET
from tests.support.mosquitto import wait_until
from tests.support.postgres import PostgresServer
from tests.support.procs import die_with_parent
from tests.support.webhook_receiver import Answer, WebhookReceiver


def contacts_text(url: str, batch: int = 1) -> str:
    return (
        "allow_networks: [127.0.0.0/8]\n"
        "tenants:\n"
        f'  - {{park: hp, tenant: dye, channels: [{{kind: webhook, url: "{url}",'
        f" secrets: [{SECRET}], batch: {batch}}}]}}\n"
    )


def enqueue(db: Database, text: str, n: int) -> None:
    repo = AlertRepository(db, notifier=ContactsNotifier(parse_contacts(text)))
    repo.apply(
        [observe(SURPLUS, f"hp:m{i:04d}:steam", "hp", "dye", True, f"s{i}") for i in range(n)],
        1_000,
    )


def unsent(db: Database) -> int:
    with db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_ms.is_(None))
        return int(conn.execute(query).scalar_one())


@pytest.mark.parametrize("batch", [1, 20])
def test_a_dispatcher_killed_between_send_and_record_sends_again_with_the_same_ids(
    db_url: str, tmp_path: Path, batch: int
) -> None:
    """One notification per request, or batches of 20: either way each notification's id
    comes again and the receiver keeps each once."""
    n = 300
    slow = [Answer(200, delay_s=0.01 * batch**0.5) for _ in range(2 * n)]
    with WebhookReceiver(SECRET, slow) as hook:
        contacts = tmp_path / "contacts.yaml"
        contacts.write_text(contacts_text(hook.url, batch))

        def accepted() -> set[str]:
            """The notification ids the receiver accepted (those of a batch each once)."""
            with hook.lock:
                docs = list(hook.delivered.values())
            if batch == 1:
                return {d["data"]["id"] for d in docs}
            return {x["data"]["id"] for d in docs for x in d["data"]["notifications"]}

        db = Database(db_url)
        try:
            enqueue(db, contacts.read_text(), n)
            env = {
                **os.environ,
                "PARKFLOW_DATABASE_URL": db_url,
                "PARKFLOW_ALERTS_CONTACTS": str(contacts),
                "PARKFLOW_DISPATCH_LANES": "4",
                "PARKFLOW_DISPATCH_CHUNK": "1000",  # nothing recorded before the kill
            }

            def dispatcher() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    [sys.executable, "-m", "parkflow.cli", "dispatch"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=die_with_parent(),
                )

            first = dispatcher()
            wait_until(lambda: len(accepted()) >= n // 4, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            requests_before_kill = len(hook.delivered)
            assert 0 < len(accepted()) < n
            assert unsent(db) == n  # accepted by the receiver, not yet recorded
            second = dispatcher()
            try:
                wait_until(lambda: unsent(db) == 0, timeout=90)
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(20) == 0  # a clean stop on SIGTERM
        finally:
            db.close()
        assert len(accepted()) == n  # none lost
        # sent again with the same webhook-id (a batch made up the same way: the same id)
        assert hook.duplicates >= requests_before_kill
        assert hook.bad_signatures == 0


def test_the_database_restarted_mid_dispatch_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = PostgresServer().start()
    try:
        name = server.create_database()
        db = Database(server.url(name))
        upgrade(db)
        n = 200
        slow = [Answer(200, delay_s=0.02) for _ in range(2 * n)]
        with WebhookReceiver(SECRET, slow) as hook:
            text = contacts_text(hook.url)
            enqueue(db, text, n)
            channels = ContactChannels(parse_contacts(text))
            policy = BackoffPolicy(base_s=0.05, cap_s=0.5)
            dispatcher = Dispatcher(db, channels, policy=policy, lanes=4, chunk=20)
            stop = threading.Event()
            worker = threading.Thread(target=dispatcher.run, args=(stop, 0.05))
            with caplog.at_level(logging.INFO, logger="parkflow.alerts.dispatch"):
                worker.start()
                try:
                    wait_until(lambda: len(hook.delivered) >= 40, timeout=60)
                    server.stop()
                    time.sleep(1.5)  # passes fail meanwhile: logged, not fatal
                    server.start()
                    wait_until(lambda: unsent(db) == 0, timeout=90)
                finally:
                    stop.set()
                    worker.join(30)
                    dispatcher.close()
                    channels.close()
            assert not worker.is_alive()
            assert len(hook.delivered) == n and hook.bad_signatures == 0
            messages = [r.getMessage() for r in caplog.records]
            assert any("dispatch pass failed" in m for m in messages)
            assert any("dispatch resumed" in m for m in messages)
        db.close()
    finally:
        server.close()
