"""Who hears of alerts and how: each tenant's and each operator's channels, with a language
and a minimum severity each. The operator keeps them in a YAML file (docs/alerts.md).

Every value is checked when the file is loaded, so a malformed address or secret is reported
with where it is (``file: tenants[0] (songlam/thep-an).channels[1].url: ...``, the wording of
the registry's problems) instead of failing at the first alert. A webhook URL pointing at a
loopback, private or other non-public address is refused unless ``allow_networks`` lists it;
a name is resolved and checked again before each send (``service.alerts.ssrf``).
"""

from __future__ import annotations

import re
from functools import cached_property, partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from parkflow.errors import ConfigError
from parkflow.registry.schema import Id
from parkflow.yamlfile import load_mapping, read_text, validate_model
from service.alerts.channels.base import Language, Recipient, Severity, severity_at_least
from service.alerts.channels.webhook import signer
from service.alerts.ssrf import Network, UnsafeUrl, check_webhook_url, parse_networks

# One address, no display name, no line breaks (a header of its own), no lists.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


ALLOW_NETWORKS = "allow_networks"


class ContactsError(ConfigError):
    """The alert contacts file is unreadable or invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Model):
    language: Language = "en"
    min_severity: Severity = "info"

    def wants(self, severity: Severity) -> bool:
        return severity_at_least(severity, self.min_severity)


class WebhookContact(_Channel):
    kind: Literal["webhook"]
    url: Annotated[str, StringConstraints(max_length=2048)]
    secrets: list[str] = Field(
        min_length=1, max_length=4, description="whsec_... ; two while rotating"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    batch: int = Field(
        default=1,
        ge=1,
        le=500,
        description="up to this many notifications per POST, as one signed document"
        " (docs/alerts.md, Batches); 1: one per POST",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str, info: ValidationInfo) -> str:
        """Form and literal addresses only: no DNS while loading (names: before each send).
        The allow-list comes in the validation context (the file's ``allow_networks``)."""
        allowed = (info.context or {}).get(ALLOW_NETWORKS, ())
        try:
            check_webhook_url(v, allowed, resolve=None)
        except UnsafeUrl as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: list[str]) -> list[str]:
        for i, s in enumerate(v):
            try:
                signer(s)
            except ValueError as exc:
                raise ValueError(f"secret {i + 1}: {exc}") from None
        if len(set(v)) != len(v):
            raise ValueError("a secret is listed twice")
        return v


class EmailContact(_Channel):
    kind: Literal["email"]
    address: str

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if len(v) > 254 or not _EMAIL.match(v):
            raise ValueError(
                f"{v!r} is not one e-mail address (name@example.com, no display name or list)"
            )
        return v


class MqttContact(_Channel):
    kind: Literal["mqtt"]


ChannelContact = Annotated[WebhookContact | EmailContact | MqttContact, Field(discriminator="kind")]


class TenantContacts(_Model):
    park: Id
    tenant: Id
    channels: list[ChannelContact] = Field(default_factory=list)


class OperatorContacts(_Model):
    id: Id
    park: Id
    channels: list[ChannelContact] = Field(default_factory=list)


class Contacts(_Model):
    allow_networks: list[str] = Field(
        default_factory=list,
        description="non-public networks webhooks may reach (a park LAN); empty: public only",
    )
    tenants: list[TenantContacts] = Field(default_factory=list)
    operators: list[OperatorContacts] = Field(default_factory=list)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        parse_networks(v)
        return v

    @property
    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.allow_networks)

    @model_validator(mode="after")
    def _checks(self) -> Contacts:
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for t in self.tenants:
            if (t.park, t.tenant) in seen:
                problems.append(f"tenant {t.park}/{t.tenant} is listed twice")
            seen.add((t.park, t.tenant))
        ops = [(o.park, o.id) for o in self.operators]
        problems += [
            f"operator {p}/{i} is listed twice" for p, i in set(ops) if ops.count((p, i)) > 1
        ]
        # A webhook URL is one endpoint: its delivery state, secrets and batch size are one.
        # Two recipients on one URL would share a backoff and be signed with one's secret (a
        # batch would carry both): each recipient gets a URL of its own (a path each).
        owners: dict[str, str] = {}
        for who, channels in [
            *((f"tenant {t.park}/{t.tenant}", t.channels) for t in self.tenants),
            *((f"operator {o.park}/{o.id}", o.channels) for o in self.operators),
        ]:
            for c in channels:
                if not isinstance(c, WebhookContact):
                    continue
                first = owners.get(c.url)
                if first is None:
                    owners[c.url] = who
                elif first != who:
                    problems.append(
                        f"webhook {c.url} is {first}'s and {who}'s: give each recipient a URL"
                        " of its own (e.g. a path each)"
                    )
                else:
                    problems.append(f"webhook {c.url} is listed twice for {who}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @cached_property
    def _by_recipient(self) -> dict[tuple[str, str, str], list[ChannelContact]]:
        """Channels by ("tenant" | "operator", park, id): an evaluation looks up every
        notification's recipient, so not by a scan of the contacts."""
        out: dict[tuple[str, str, str], list[ChannelContact]] = {}
        for t in self.tenants:
            out.setdefault(("tenant", t.park, t.tenant), list(t.channels))
        for o in self.operators:
            out.setdefault(("operator", o.park, o.id), list(o.channels))
        return out

    def channels_of(self, recipient: Recipient) -> list[ChannelContact]:
        if recipient.tenant is not None:
            found = self._by_recipient.get(("tenant", recipient.park, recipient.tenant))
            if found is not None:
                return list(found)
        if recipient.operator is not None:
            found = self._by_recipient.get(("operator", recipient.park, recipient.operator))
            if found is not None:
                return list(found)
        return []

    def routes(self, recipient: Recipient, severity: Severity) -> list[ChannelContact]:
        """The recipient's channels that want an alert of ``severity``."""
        return [c for c in self.channels_of(recipient) if c.wants(severity)]


def _name(node: dict[str, Any]) -> str | None:
    if "tenant" in node:
        return f"{node.get('park')}/{node['tenant']}"
    if "id" in node:
        return f"{node.get('park')}/{node['id']}"
    return None


def parse_contacts(text: str, source: str = "<contacts>") -> Contacts:
    fail = partial(ContactsError, source)
    data = load_mapping(
        text, source, fail, shape="a mapping with 'tenants' and 'operators'", empty_ok=True
    )
    try:  # read first: the webhook URLs are checked against it (a malformed one: reported)
        networks = parse_networks(data.get(ALLOW_NETWORKS) or [])
    except (ValueError, TypeError):
        networks = ()
    context = {ALLOW_NETWORKS: networks}
    return validate_model(Contacts, data, fail, source, _name, context)


def load_contacts(path: str | Path) -> Contacts:
    source = str(path)
    return parse_contacts(read_text(path, partial(ContactsError, source)), source)
