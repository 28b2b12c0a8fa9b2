"""Two dispatchers over one database at once (a replica each): every notification is sent
by exactly one of them, both sharing the work."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from service.alerts.contacts import parse_contacts
from service.alerts.dispatch import _CLAIM_LOCK, Dispatcher
from service.alerts.routing import ContactChannels
from service.state import Database, upgrade
from tests.service.alerts.build import SECRET
from tests.service.alerts.test_dispatch_faults import contacts_text, enqueue, unsent
from tests.support.postgres import PostgresServer
from tests.support.webhook_receiver import Answer, WebhookReceiver


def test_two_dispatchers_never_send_one_notification_twice(db_url: str) -> None:
    n = 300
    slow = [Answer(200, delay_s=0.01) for _ in range(n)]
    with WebhookReceiver(SECRET, slow) as hook:
        text = contacts_text(hook.url)
        db = Database(db_url)
        try:
            enqueue(db, text, n)
            sent = {"a": 0, "b": 0}
            failures: list[BaseException] = []

            def work(name: str) -> None:
                own = Database(db_url)  # each its own engine, as two processes would
                channels = ContactChannels(parse_contacts(text))
                dispatcher = Dispatcher(own, channels, lanes=4, batch=40, chunk=10)
                try:
                    while unsent(own):
                        sent[name] += dispatcher.run_once().sent
                except BaseException as exc:  # reported by the test, not lost in the thread
                    failures.append(exc)
                finally:
                    dispatcher.close()
                    channels.close()
                    own.close()

            threads = [threading.Thread(target=work, args=(name,)) for name in sent]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert failures == [] and not any(t.is_alive() for t in threads)
            assert unsent(db) == 0
        finally:
            db.close()
    assert len(hook.delivered) == n and hook.duplicates == 0 and hook.bad_signatures == 0
    assert sum(sent.values()) == n  # each recorded sent once: never attempted by both
    assert all(sent.values()), sent  # and both took part


def test_a_claim_waits_for_another_dispatchers_open_claim(postgres: PostgresServer) -> None:
    """On PostgreSQL the claims are taken one at a time: while one dispatcher's claim is
    open its rows are hidden from the others (SKIP LOCKED), and an alert's later
    notification would look free to claim beside its earlier one, out of order."""
    url = postgres.url(postgres.create_database())
    db = Database(url)
    upgrade(db)
    try:
        text = contacts_text("http://127.0.0.1:9/hook")
        enqueue(db, text, 2)
        channels = ContactChannels(parse_contacts(text))
        b = Dispatcher(db, channels)
        got: list[int] = []
        with db.transaction() as conn:  # another dispatcher's claim, still open
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK)))
            waiting = threading.Thread(target=lambda: got.append(len(b.claim(10**13))))
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive() and got == []  # b waits for it
        waiting.join(10)
        assert got == [2]  # then claims what is due
        b.close()
        channels.close()
    finally:
        db.close()
