"""The dispatcher against real receivers: a signed-webhook HTTP server, an SMTP server
(aiosmtpd) and Mosquitto, on SQLite and PostgreSQL. Each notification is marked sent only
after its channel accepted it; a receiver that was down gets everything later, in order per
subject; a dead endpoint is disabled and the operators told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from service.alerts.backoff import BackoffPolicy
from service.alerts.channels.base import Accepted, Delivery, Notification, RetryLater
from service.alerts.channels.smtp import SmtpServer as SmtpSettings
from service.alerts.consents import ConsentRepository
from service.alerts.contacts import Contacts, parse_contacts
from service.alerts.delivery import Disabled
from service.alerts.dispatch import Dispatcher, PassStats, enable
from service.alerts.kinds import ENDPOINT_DISABLED, OPPORTUNITY, SURPLUS
from service.alerts.lifecycle import Observation, Status, observe
from service.alerts.notify import ContactsNotifier
from service.alerts.repository import AlertRepository
from service.alerts.routing import ContactChannels
from service.alerts.texts import OpportunityFacts, Side, SurplusFacts, facts_json
from service.auth import Pepper
from service.events import OPPORTUNITY_NEW, SURPLUS_NEW
from service.state import Database
from service.state.tables import endpoints, outbox
from tests.service.alerts.build import SECRET
from tests.support.smtp import Mailbox, SmtpServer
from tests.support.webhook_receiver import Answer, WebhookReceiver

FAST = BackoffPolicy(base_s=0.05, cap_s=0.2, disable_after_s=3600)
OPP = "hp:wwtp-out:dye-in:effluent_cooling"


def contacts(url: str, *, tenant_email: bool = True) -> Contacts:
    tenant_channels = [f'{{kind: webhook, url: "{url}", secrets: [{SECRET}]}}']
    if tenant_email:
        tenant_channels.append("{kind: email, address: dye@example.com, language: vi}")
    return parse_contacts(
        "allow_networks: [127.0.0.0/8]\n"
        "tenants:\n"
        f"  - {{park: hp, tenant: dye, channels: [{', '.join(tenant_channels)}]}}\n"
        "operators:\n"
        "  - {id: ops, park: hp, channels: [{kind: email, address: ops@example.com,"
        " min_severity: warning}]}\n"
    )


def opportunity(holds: bool = True, oid: str = OPP) -> Observation:
    facts = OpportunityFacts(
        kind=OPPORTUNITY_NEW,
        park="hp",
        ref="",
        opportunity_id=oid,
        rule="effluent_cooling",
        supplier=Side(
            "wwtp",
            "Song Lam Central WWTP",
            "wwtp-out",
            "water.treated_effluent",
            "m3",
            612.0,
            151.0,
            92e6,
            (10.0, 20.0),
        ),
        receiver=Side(
            "dye",
            "Det Phuoc Dyeing",
            "dye-in",
            "water.potable",
            "m3",
            433.0,
            151.0,
            413e6,
            (310.0, 20.0),
        ),
        distance_m=300.0,
        park_vnd_per_year=505e6,
    )
    return observe(OPPORTUNITY, oid, "hp", "dye", holds, "effluent to dye", facts=facts_json(facts))


def surplus(subject: str, holds: bool, per_day: float = 40.0) -> Observation:
    facts = SurplusFacts(
        kind=SURPLUS_NEW,
        park="hp",
        ref="",
        surplus_id=subject,
        tenant="dye",
        name="Det Phuoc",
        meter="dye-steam-vent",
        resource="energy.steam",
        unit="t",
        per_day=per_day,
        before_per_day=per_day,
        days_present=20,
        days=28,
    )
    return observe(
        SURPLUS, subject, "hp", "dye", holds, f"steam {per_day}", facts=facts_json(facts)
    )


PEPPER = Pepper(b"a test pepper of at least thirty-two characters")


class Setup:
    def __init__(self, db: Database, c: Contacts, smtp_port: int) -> None:
        self.db = db
        # the API's references (its pepper's), so a tenant quotes one reference everywhere
        self.repo = AlertRepository(db, notifier=ContactsNotifier(c, reference=PEPPER.reference))
        smtp = SmtpSettings("127.0.0.1", "parkflow@example.com", port=smtp_port, starttls=False)
        self.channels = ContactChannels(c, smtp=smtp)
        self.dispatcher = Dispatcher(db, self.channels, policy=FAST, lanes=4, jitter=lambda: 0.9)
        self.clock = 1_000

    def apply(self, *obs: Observation) -> None:
        self.clock += 1_000
        self.repo.apply(list(obs), self.clock)

    def drain(self, until: Callable[[], bool], timeout_s: float = 20.0) -> list[PassStats]:
        passes: list[PassStats] = []
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, f"not drained: {passes[-3:]}"
            passes.append(self.dispatcher.run_once())
            time.sleep(0.02)
        return passes

    def close(self) -> None:
        self.dispatcher.close()
        self.channels.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, SmtpServer]]:
    box = Mailbox()
    with SmtpServer(box) as server:
        yield box, server


def pending(db: Database) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_ms.is_(None))
            ).scalar_one()
        )


def test_an_opportunity_reaches_its_receiver_anonymous_until_both_consent(
    database: Database, mailbox: tuple[Mailbox, SmtpServer]
) -> None:
    box, smtp = mailbox
    with WebhookReceiver(SECRET) as hook:
        s = Setup(database, contacts(hook.url), smtp.port)
        try:
            s.apply(opportunity())
            s.drain(lambda: pending(database) == 0)
            (first,) = hook.delivered.values()
            assert first["type"] == "alert.opportunity"
            facts = first["data"]["facts"]
            assert facts["introduced"] is False and facts["role"] == "receiver"
            body = json.dumps(first, ensure_ascii=False)
            for secret in ("wwtp", "Central WWTP", "Song Lam"):
                assert secret not in body  # nothing of the supplier before consent
            assert "about 300 m away" in first["data"]["text"]
            assert PEPPER.reference(OPP) in first["data"]["text"]  # the portal's reference
            (mail,) = box.messages  # the tenant's Vietnamese mailbox; operators want warnings
            raw = mail.get_payload(decode=True)
            assert isinstance(raw, bytes) and "quý công ty" in raw.decode("utf-8")
            assert mail["To"] == "dye@example.com"

            consents = ConsentRepository(database)
            consents.give("hp", OPP, "wwtp", "ops", "letter of 2 Dec")
            consents.give("hp", OPP, "dye", "ops")
            s.apply(opportunity(holds=False))  # gone: the notice now names the counterpart
            s.drain(lambda: pending(database) == 0)
            gone = list(hook.delivered.values())[-1]
            assert gone["data"]["facts"]["introduced"] is True
            assert gone["data"]["facts"]["counterpart"]["name"] == "Song Lam Central WWTP"

            consents.withdraw(OPP, "wwtp", "ops")
            s.apply(opportunity())  # back, and anonymous again
            s.drain(lambda: pending(database) == 0)
            again = list(hook.delivered.values())[-1]
            assert again["data"]["event"] == "reopened"
            assert again["data"]["facts"]["introduced"] is False
            assert "Song Lam" not in json.dumps(again, ensure_ascii=False)
            assert hook.duplicates == 0 and hook.bad_signatures == 0
        finally:
            s.close()


def test_a_receiver_down_for_a_while_gets_everything_later_in_order_per_subject(
    database: Database, mailbox: tuple[Mailbox, SmtpServer]
) -> None:
    _, smtp = mailbox
    down = [Answer(503) for _ in range(6)]
    with WebhookReceiver(SECRET, down) as hook:
        s = Setup(database, contacts(hook.url, tenant_email=False), smtp.port)
        try:
            subjects = [f"hp:dye-steam-vent:{i}" for i in range(5)]
            s.apply(*(surplus(x, True, 40.0) for x in subjects))  # opened
            s.apply(*(surplus(x, False) for x in subjects))  # resolved
            s.apply(*(surplus(x, True, 55.0) for x in subjects))  # reopened
            first = s.dispatcher.run_once()
            assert first.due == 15 and first.sent == 0 and 1 <= first.retried <= 4
            # backed off as a whole: nothing of the endpoint's is due until its retry time
            with database.connect() as conn:
                retry_at = conn.execute(sa.select(endpoints.c.next_attempt_ms)).scalar_one()
            assert s.dispatcher.due(retry_at - 1) == []
            assert len(s.dispatcher.due(retry_at + 1000)) == 15  # then all, in order
            passes = [first, *s.drain(lambda: pending(database) == 0)]
            got = list(hook.delivered.values())
            assert len(got) == 15 and hook.duplicates == 0
            for x in subjects:
                story = [g["data"]["event"] for g in got if g["data"]["facts"]["surplus_id"] == x]
                assert story == ["opened", "resolved", "reopened"]
            assert sum(p.retried for p in passes) == 6 and len(hook.requests) == 15 + 6
        finally:
            s.close()


def test_an_endpoint_that_says_gone_is_disabled_and_the_operators_told(
    database: Database, mailbox: tuple[Mailbox, SmtpServer]
) -> None:
    box, smtp = mailbox
    with WebhookReceiver(SECRET, [Answer(410)]) as hook:
        c = contacts(hook.url, tenant_email=False)
        s = Setup(database, c, smtp.port)

        # what the service composes: the operators hear of it by an alert of its own
        def told(d: Disabled, endpoint: str) -> None:
            subject = f"{d.channel} {endpoint}"
            obs = observe(ENDPOINT_DISABLED, subject, "hp", None, True, d.reason)
            s.repo.apply([obs], s.clock + 500)

        s.dispatcher.on_disabled = told
        try:
            s.apply(surplus("hp:dye-steam-vent:x", True))
            stats = s.dispatcher.run_once()
            assert len(stats.disabled) == 1 and stats.disabled[0].gone
            alert = s.repo.get(ENDPOINT_DISABLED.name, f"webhook {hook.url}")
            assert alert is not None and alert.status is Status.OPEN
            s.dispatcher.run_once()  # the operators' e-mail goes out; the webhook waits
            (mail,) = box.messages
            assert mail["To"] == "ops@example.com" and "Alert endpoint disabled" in mail["Subject"]
            assert pending(database) == 1 and hook.delivered == {}
            assert s.dispatcher.run_once().due == 0  # a disabled endpoint is not tried
            assert enable(database, "webhook", hook.url)
            s.drain(lambda: pending(database) == 0)
            (late,) = hook.delivered.values()  # kept, and delivered once enabled again
            assert late["data"]["facts"]["surplus_id"] == "hp:dye-steam-vent:x"
        finally:
            s.close()


def test_smtp_refusing_then_accepting_delivers_once(database: Database) -> None:
    box = Mailbox(script=["451 4.3.0 try again later"])
    with SmtpServer(box) as smtp, WebhookReceiver(SECRET) as hook:
        s = Setup(database, contacts(hook.url), smtp.port)
        try:
            s.apply(opportunity())
            first = s.dispatcher.run_once()
            assert first.retried == 1 and not box.messages  # the webhook went, the mail waits
            s.drain(lambda: pending(database) == 0)
            (mail,) = box.messages
            assert mail["To"] == "dye@example.com"
            assert len(hook.delivered) == 1 and hook.duplicates == 0
        finally:
            s.close()


def test_pending_metrics_follow_the_outbox(database: Database) -> None:
    with WebhookReceiver(SECRET, [Answer(503)]) as hook:
        s = Setup(database, contacts(hook.url, tenant_email=False), 1)
        try:
            s.apply(surplus("hp:dye-steam-vent:m", True))
            s.dispatcher.run_once()

            def value(name: str) -> float | None:
                labels = {"channel": "webhook"}
                return s.dispatcher.metrics.registry.get_sample_value(name, labels)

            assert value("parkflow_alerts_pending") == 1
            assert value("parkflow_alerts_retried_total") == 1
            s.drain(lambda: pending(database) == 0)
            assert value("parkflow_alerts_pending") == 0
            assert value("parkflow_alerts_sent_total") == 1
        finally:
            s.close()


class Recorder:
    """A channel for any endpoint that notes which endpoint each notification reached, in
    the order sent: the order is the dispatcher's decision under test."""

    name = "webhook"

    def __init__(self, endpoint: str, log: list[tuple[str, str]]) -> None:
        self.endpoint = endpoint
        self.log = log

    def send(self, n: Notification) -> Delivery:
        self.log.append((self.endpoint, n.id))
        return Accepted("recorded")


def test_endpoints_take_turns_and_each_alert_stays_in_order(database: Database) -> None:
    hooks = {t: f"http://127.0.0.1:9/hooks/{t}" for t in ("a", "b")}
    c = parse_contacts(
        "allow_networks: [127.0.0.0/8]\ntenants:\n"
        + "".join(
            f"  - {{park: hp, tenant: {t}, channels: [{{kind: webhook,"
            f' url: "{url}", secrets: [{SECRET}]}}]}}\n'
            for t, url in hooks.items()
        )
    )
    repo = AlertRepository(database, notifier=ContactsNotifier(c))
    log: list[tuple[str, str]] = []
    made: dict[str, Recorder] = {}

    def channels(channel: str, endpoint: str) -> Recorder:
        return made.setdefault(endpoint, Recorder(endpoint, log))

    dispatcher = Dispatcher(database, channels, policy=FAST, lanes=1)
    try:
        # a's three alerts first, then b's: one endpoint's backlog must not go before the other
        opened = [
            observe(SURPLUS, f"{t}{i}", "hp", t, True, f"surplus {t}{i}")
            for t in ("a", "b")
            for i in range(3)
        ]
        repo.apply(opened, 1_000)
        repo.apply([replace(o, holds=False) for o in opened], 2_000)
        assert dispatcher.run_once().sent == 12
    finally:
        dispatcher.close()
    # one lane: an alert's two notifications to its endpoint in a row, the endpoints in turn
    assert [e for e, _ in log] == [hooks["a"], hooks["a"], hooks["b"], hooks["b"]] * 3
    rows = {n["id"]: n for n in repo.notifications()}
    sent: dict[str, list[str]] = {}
    for _, nid in log:
        sent.setdefault(rows[nid]["alert_id"], []).append(rows[nid]["payload"]["event"])
    assert len(sent) == 6 and all(events == ["opened", "resolved"] for events in sent.values())
    with database.connect() as conn:
        rows_now = conn.execute(sa.select(endpoints.c.endpoint, endpoints.c.failures)).all()
    assert sorted(rows_now) == [(hooks["a"], 0), (hooks["b"], 0)]


def test_one_evaluation_renders_each_opportunity_against_its_own_consents(
    database: Database,
) -> None:
    """The consents of a whole evaluation are read at once: each opportunity's notification
    still names the counterpart only when both of its own parties consented."""
    consents = ConsentRepository(database)
    for party in ("wwtp", "dye"):
        consents.give("hp", "hp:agreed", party, "ops")
    consents.give("hp", "hp:half", "dye", "ops")  # the supplier has not
    repo = AlertRepository(database, notifier=ContactsNotifier(contacts("http://127.0.0.1:9/h")))
    oids = ["hp:agreed", "hp:half", "hp:none"]
    applied = repo.apply([opportunity(oid=o) for o in oids], 1_000)
    assert len(applied) == 3
    for oid, a in zip(
        oids, sorted(applied, key=lambda x: oids.index(x.alert.subject)), strict=True
    ):
        (hook,) = [n for n in repo.notifications(a.alert.id) if n["channel"] == "webhook"]
        facts = hook["payload"]["notification"]["data"]
        assert facts["introduced"] is (oid == "hp:agreed"), oid
        body = json.dumps(hook["payload"], ensure_ascii=False)
        assert ("Song Lam" in body) is (oid == "hp:agreed"), oid


def test_a_success_after_a_recorded_failure_in_the_same_pass_is_written(
    database: Database,
) -> None:
    """Two lanes to one endpoint: one alert's notification fails and is recorded (the
    endpoint backs off) while the other's is still in flight; when that one succeeds, the
    endpoint is healthy again, though it was healthy when the pass began."""
    hook = "http://127.0.0.1:9/hooks/a"
    c = parse_contacts(
        "allow_networks: [127.0.0.0/8]\ntenants:\n"
        f'  - {{park: hp, tenant: a, channels: [{{kind: webhook, url: "{hook}",'
        f" secrets: [{SECRET}]}}]}}\n"
    )
    repo = AlertRepository(database, notifier=ContactsNotifier(c))
    with database.transaction() as conn:  # healthy as the pass begins
        conn.execute(
            endpoints.insert().values(
                channel="webhook", endpoint=hook, failures=0, next_attempt_ms=0
            )
        )
    (slow,) = repo.apply([observe(SURPLUS, "slow", "hp", "a", True, "s")], 1_000)
    repo.apply([observe(SURPLUS, "fails", "hp", "a", True, "f")], 2_000)
    entered = threading.Event()

    def failing_recorded() -> bool:
        with database.connect() as conn:
            row = conn.execute(sa.select(endpoints.c.failures)).scalar_one()
        return bool(row)

    class Split:
        name = "webhook"

        def send(self, n: Notification) -> Delivery:
            if n.data["alert_id"] == slow.alert.id:
                entered.set()
                deadline = time.monotonic() + 10
                while not failing_recorded():  # in flight until the failure is written
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                return Accepted("late")
            assert entered.wait(10)
            return RetryLater("HTTP 503")

    split = Split()
    dispatcher = Dispatcher(database, lambda ch, ep: split, policy=FAST, lanes=2, chunk=1)
    try:
        stats = dispatcher.run_once()
    finally:
        dispatcher.close()
    assert (stats.sent, stats.retried) == (1, 1)
    with database.connect() as conn:
        row = conn.execute(sa.select(endpoints)).mappings().one()
    assert (row["failures"], row["next_attempt_ms"], row["last_error"]) == (0, 0, None)
