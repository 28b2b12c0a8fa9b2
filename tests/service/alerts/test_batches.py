"""Webhook batches: an endpoint that asks for them (``batch: N`` in the contacts) gets up to N
notifications per signed POST, in the order they came due; a batch is accepted or retried as
a whole; receivers keep each notification's own id. Against a real HTTP receiver that
verifies every signature with the ``standardwebhooks`` package, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from standardwebhooks import Webhook

from service.alerts.channels import webhook
from service.alerts.channels.base import BATCH_TYPE, batch_id, batch_payload, payload
from service.alerts.channels.webhook import signed_batch, signer
from service.alerts.contacts import Contacts, ContactsError, parse_contacts
from service.alerts.delivery import Disabled
from service.state import Database
from tests.service.alerts.build import SECRET, note
from tests.service.alerts.test_dispatch import Setup, pending, surplus
from tests.support.smtp import Mailbox, SmtpServer
from tests.support.webhook_receiver import Answer, WebhookReceiver


def batched(url: str, batch: int | str) -> Contacts:
    return parse_contacts(
        "allow_networks: [127.0.0.0/8]\n"
        "tenants:\n"
        f'  - {{park: hp, tenant: dye, channels: [{{kind: webhook, url: "{url}",'
        f" secrets: [{SECRET}], batch: {batch}}}]}}\n"
    )


def items(hook: WebhookReceiver) -> list[dict[str, Any]]:
    """Every notification the receiver accepted, in arrival order, each once by its own id
    (as docs/alerts.md asks of integrators)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for doc in hook.delivered.values():
        assert doc["type"] == BATCH_TYPE
        for n in doc["data"]["notifications"]:
            if n["data"]["id"] not in seen:
                seen.add(n["data"]["id"])
                out.append(n)
    return out


def test_a_batch_is_one_signed_document_of_the_notifications_in_order() -> None:
    ns = [note(), note(), note()]
    headers, body = signed_batch(ns, [signer(SECRET)], time.time())
    doc = Webhook(SECRET).verify(body, headers)  # the reference implementation accepts it
    assert headers["webhook-id"] == batch_id(ns) == doc["data"]["id"]
    assert doc["data"]["notifications"] == [payload(n) for n in ns]
    assert doc == batch_payload(ns)
    # the same notifications in the same order: the same id (a resend is recognised)
    assert batch_id(list(ns)) == batch_id(ns)
    assert batch_id(ns[::-1]) != batch_id(ns) and batch_id(ns[:2]) != batch_id(ns)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("0", "greater than or equal to 1"),
        ("501", "less than or equal to 500"),
        ("two", "a valid integer"),
    ],
)
def test_a_batch_size_out_of_bounds_is_refused_where_it_is(bad: str, why: str) -> None:
    with pytest.raises(ContactsError) as info:
        batched("http://127.0.0.1:9/hook", bad)
    (problem,) = info.value.problems
    assert problem.startswith("<contacts>: tenants[0] (hp/dye).channels[0].webhook.batch: ")
    assert why in problem


@pytest.fixture
def smtp_port() -> Any:
    with SmtpServer(Mailbox()) as server:
        yield server.port


def test_a_batching_endpoint_down_for_a_while_gets_everything_in_batches_in_order(
    database: Database, smtp_port: int
) -> None:
    with WebhookReceiver(SECRET, [Answer(503), Answer(503)]) as hook:
        s = Setup(database, batched(hook.url, 4), smtp_port)
        try:
            subjects = [f"hp:dye-steam-vent:{i}" for i in range(5)]
            s.apply(*(surplus(x, True, 40.0) for x in subjects))  # opened
            s.apply(*(surplus(x, False) for x in subjects))  # resolved
            s.apply(*(surplus(x, True, 55.0) for x in subjects))  # reopened
            first = s.dispatcher.run_once()
            # the first batch of four refused: all four to retry, the lane stopped there
            assert (first.due, first.sent, first.retried) == (15, 0, 4)
            s.drain(lambda: pending(database) == 0)
            got = items(hook)
            assert len(got) == 15 and hook.bad_signatures == 0
            for x in subjects:
                story = [g["data"]["event"] for g in got if g["data"]["facts"]["surplus_id"] == x]
                assert story == ["opened", "resolved", "reopened"]
            sizes = [len(doc["data"]["notifications"]) for doc in hook.delivered.values()]
            assert sizes == [4, 4, 4, 3]  # 15 in four POSTs, not fifteen
            assert len(hook.requests) == 4 + 2  # the two refused were the same first batch
            assert len({r["webhook-id"] for r in hook.requests[:3]}) == 1
        finally:
            s.close()


def test_a_batch_told_gone_disables_the_endpoint_once(database: Database, smtp_port: int) -> None:
    with WebhookReceiver(SECRET, [Answer(410)]) as hook:
        s = Setup(database, batched(hook.url, 10), smtp_port)
        told: list[Disabled] = []
        s.dispatcher.on_disabled = lambda d, endpoint: told.append(d)
        try:
            s.apply(*(surplus(f"hp:dye-steam-vent:{i}", True) for i in range(6)))
            stats = s.dispatcher.run_once()
            assert len(told) == 1 and len(stats.disabled) == 1 and told[0].gone
            assert pending(database) == 6 and hook.delivered == {}
            assert s.dispatcher.run_once().due == 0  # a disabled endpoint is not tried
        finally:
            s.close()


def test_a_batch_too_large_for_the_receiver_goes_as_halves(
    database: Database, smtp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 413 (or a body over the size limit) would otherwise be retried until the endpoint
    is disabled, everything behind it waiting."""
    with WebhookReceiver(SECRET, [Answer(413)]) as hook:
        s = Setup(database, batched(hook.url, 10), smtp_port)
        try:
            s.apply(*(surplus(f"hp:dye-steam-vent:{i}", True) for i in range(6)))
            stats = s.dispatcher.run_once()
            assert (stats.sent, stats.retried) == (6, 0)
            sent = [len(json.loads(b)["data"]["notifications"]) for b in hook.bodies]
            assert sent == [6, 3, 3]  # refused whole, then taken in halves
            # and by size: a body over the limit is never sent whole
            # (a limit below two notifications' body: each goes alone)
            monkeypatch.setattr(webhook, "MAX_BATCH_BYTES", len(hook.bodies[1]) // 2)
            s.apply(*(surplus(f"hp:dye-steam-vent:{i}", False) for i in range(6)))
            s.apply(*(surplus(f"hp:dye-steam-vent:{i}", False) for i in range(6)))
            s.drain(lambda: pending(database) == 0)
            later = [len(json.loads(b)["data"]["notifications"]) for b in hook.bodies[3:]]
            assert sum(later) == 6 and max(later) == 1
            assert len(items(hook)) == 12 and hook.bad_signatures == 0
        finally:
            s.close()
