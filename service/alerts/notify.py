"""From an alert's step to the notifications it makes: who hears of it (the alert's tenant,
the park's operators), on which of their channels (contacts, by severity), in which words
(texts, in each channel's language, anonymised until both parties consented).

The repository calls a ``Notifier`` inside the transaction that writes the step, so the
notifications are rendered and stored with it or not at all, and the consents read are those
of that moment. Each notification is rendered once: a retry sends the same words with the
same id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Connection

from service.alerts.channels.base import Language, Notification, Recipient, Severity
from service.alerts.channels.mqtt import topic_of
from service.alerts.consents import introduced_among
from service.alerts.contacts import (
    ChannelContact,
    Contacts,
    EmailContact,
    MqttContact,
    WebhookContact,
)
from service.alerts.kinds import Audience, Kind
from service.alerts.lifecycle import Alert, Event, Transition
from service.alerts.texts import (
    DETECTION_FACTS,
    OPERATOR,
    OpportunityFacts,
    Rendered,
    SurplusFacts,
    as_notification,
    condition,
    facts_from_json,
    render,
)
from service.events import (
    OPPORTUNITY_GONE,
    OPPORTUNITY_NEW,
    SURPLUS_GONE,
    SURPLUS_GROWN,
    SURPLUS_NEW,
    SURPLUS_SHRUNK,
)

ALL_PARKS = "*"  # an alert about the system itself: every park's operators hear of it
DEFAULT_OPERATOR = "operators"  # the operators' topic when no contacts file names them


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification for one endpoint: ``channel`` and ``endpoint`` (a URL, a mailbox, a
    topic) key its delivery state; the notification is what is sent."""

    channel: str
    endpoint: str
    notification: Notification


class Notifier(Protocol):
    def __call__(
        self, conn: Connection, alert: Alert, kind: Kind, step: Transition
    ) -> Sequence[Outgoing]: ...


Step = tuple[Alert, Kind, Transition]


@runtime_checkable
class BatchNotifier(Notifier, Protocol):
    """A notifier that makes a whole evaluation's notifications at once, reading what they
    depend on (the consents) once for all of them; the same as calling it step by step."""

    def many(self, conn: Connection, steps: Sequence[Step]) -> list[list[Outgoing]]: ...


def endpoint_of(contact: ChannelContact, recipient: Recipient) -> tuple[str, str]:
    """(channel, endpoint) of a contact: the key its delivery state is kept under."""
    if isinstance(contact, WebhookContact):
        return "webhook", contact.url
    if isinstance(contact, EmailContact):
        return "email", contact.address
    assert isinstance(contact, MqttContact)
    return "mqtt", mqtt_endpoint(recipient)


def mqtt_endpoint(r: Recipient) -> str:
    return topic_of(r)


def ref_of(alert: Alert) -> str:
    """The opaque reference a tenant quotes to the operator: from the alert's random id,
    nothing of the parties in it."""
    return "R-" + alert.id.replace("-", "")[:8].upper()


def _template_kind(kind: str, step: Transition, facts: OpportunityFacts | SurplusFacts) -> str:
    ended = step.event is Event.RESOLVED
    if isinstance(facts, OpportunityFacts):
        return OPPORTUNITY_GONE if ended else OPPORTUNITY_NEW
    if ended:
        return SURPLUS_GONE
    if step.event is Event.UPDATED:
        return SURPLUS_SHRUNK if step.summary.startswith("shrunk") else SURPLUS_GROWN
    return SURPLUS_NEW


Reference = Callable[[str], str]  # an opportunity id -> the reference tenants quote


def rendered(
    alert: Alert,
    step: Transition,
    recipient: Recipient,
    language: Language,
    consented: bool,
    reference: Reference | None = None,
) -> Rendered:
    """What ``recipient`` is told of ``step``. Detection's kinds are rendered from their
    facts (with the privacy rule); a kind without facts is an operator's condition. An
    opportunity is named by ``reference`` (the API's and the pages' reference of it, so a
    tenant quotes one reference wherever it read it); without one, by the alert's."""
    if alert.facts is not None and alert.facts.get("type") in DETECTION_FACTS:
        facts = facts_from_json(alert.facts)
        ref = ref_of(alert)
        if reference is not None and isinstance(facts, OpportunityFacts):
            ref = reference(facts.opportunity_id)
        facts = replace(facts, kind=_template_kind(alert.kind, step, facts), ref=ref)
        audience = OPERATOR if recipient.is_operator else str(recipient.tenant)
        return render(facts, audience, consented, language)
    return condition(
        alert.kind,
        alert.subject,
        step.summary,
        step.event is Event.RESOLVED,
        language,
        alert.severity.value,
    )


def recipients(alert: Alert, kind: Kind, operators: Callable[[str], list[str]]) -> list[Recipient]:
    """The alert's tenant (a supplier's surplus, a receiver's opportunity), or both parties
    of an exchange, and the operators of its park; an alert about the system, every park's
    operators."""
    out: list[Recipient] = []
    if kind.audience is Audience.PARTIES:
        out += [Recipient(alert.park, tenant=t) for t in parties_of(alert)]
    elif kind.audience is not Audience.OPERATORS and alert.tenant is not None:
        out.append(Recipient(alert.park, tenant=alert.tenant))
    for park_id, op in _operators_of(alert.park, operators):
        out.append(Recipient(park_id, operator=op))
    return out


def parties_of(alert: Alert) -> list[str]:
    """The tenants an exchange's alert names in its facts (``{"parties": [...]}``), once
    each: a party to a registered exchange was introduced to the other when it was agreed."""
    named = (alert.facts or {}).get("parties") or []
    return list(dict.fromkeys(str(t) for t in named))


def _operators_of(park: str, operators: Callable[[str], list[str]]) -> list[tuple[str, str]]:
    if park != ALL_PARKS:
        return [(park, op) for op in operators(park)]
    return [(p, op) for p in operators(ALL_PARKS) for op in operators(p)]


class ContactsNotifier:
    """Notifications by the contacts the operator keeps: each recipient's channels that want
    the alert's severity, in each channel's language."""

    def __init__(
        self,
        contacts: Contacts,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        reference: Reference | None = None,
    ) -> None:
        self.contacts = contacts
        self.new_id = new_id
        self.reference = reference

    def operators(self, park: str) -> list[str]:
        if park == ALL_PARKS:  # the parks that have operators
            return sorted({o.park for o in self.contacts.operators})
        return [o.id for o in self.contacts.operators if o.park == park]

    def routes(self, who: Recipient, severity: Severity) -> list[ChannelContact]:
        return self.contacts.routes(who, severity)

    def __call__(
        self, conn: Connection, alert: Alert, kind: Kind, step: Transition
    ) -> list[Outgoing]:
        return self.many(conn, [(alert, kind, step)])[0]

    def many(self, conn: Connection, steps: Sequence[Step]) -> list[list[Outgoing]]:
        parties = {}
        for alert, _, _ in steps:
            facts = alert.facts
            if facts and facts.get("type") == "opportunity":
                pair = (facts["supplier"]["tenant"], facts["receiver"]["tenant"])
                parties[facts["opportunity_id"]] = pair
        standing = introduced_among(conn, parties) if parties else set()
        out = []
        for alert, kind, step in steps:
            oid = (alert.facts or {}).get("opportunity_id")
            out.append(self._outgoing(alert, kind, step, oid in standing))
        return out

    def _outgoing(
        self, alert: Alert, kind: Kind, step: Transition, consented: bool
    ) -> list[Outgoing]:
        at = datetime.fromtimestamp(step.at_ms / 1000, UTC)
        out: list[Outgoing] = []
        for who in recipients(alert, kind, self.operators):
            cache: dict[Language, Rendered] = {}
            for contact in self.routes(who, alert.severity.value):
                lang = contact.language
                if lang not in cache:
                    cache[lang] = rendered(alert, step, who, lang, consented, self.reference)
                channel, endpoint = endpoint_of(contact, who)
                out.append(
                    Outgoing(
                        channel,
                        endpoint,
                        _notification(self.new_id(), alert, step, who, cache[lang], lang, at),
                    )
                )
        return out


class TopicNotifier(ContactsNotifier):
    """Without a contacts file: each tenant's alerts on its MQTT alerts topic and the
    operators' on the ``operators`` operator topic, in English, every severity."""

    def __init__(
        self,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        reference: Reference | None = None,
    ) -> None:
        super().__init__(Contacts(), new_id=new_id, reference=reference)

    def operators(self, park: str) -> list[str]:
        return [] if park == ALL_PARKS else [DEFAULT_OPERATOR]

    def routes(self, who: Recipient, severity: Severity) -> list[ChannelContact]:
        return [MqttContact(kind="mqtt")]


def _notification(
    nid: str,
    alert: Alert,
    step: Transition,
    who: Recipient,
    r: Rendered,
    language: Language,
    at: datetime,
) -> Notification:
    status = alert.status.value if alert.status else None
    extra = {"alert_id": alert.id, "event": step.event.value, "status": status}
    return as_notification(r, nid, who, alert.kind, language, at, extra)
