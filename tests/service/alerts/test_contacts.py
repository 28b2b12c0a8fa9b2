"""The alert contacts file: valid settings load; each malformed value is reported with where
it is and why, the registry's wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from parkflow.errors import ConfigError
from service.alerts.channels import Recipient
from service.alerts.contacts import (
    ContactsError,
    EmailContact,
    MqttContact,
    WebhookContact,
    load_contacts,
    parse_contacts,
)
from tests.service.alerts.build import OTHER_SECRET, SECRET

GOOD = f"""
allow_networks: [10.20.0.0/16]
tenants:
  - park: songlam
    tenant: thep-an
    channels:
      - {{kind: webhook, url: "https://hooks.thep-an.example.com/parkflow", secrets: [{SECRET}, {OTHER_SECRET}], language: vi, min_severity: warning}}
      - {{kind: webhook, url: "http://10.20.1.5:8080/alerts", secrets: [{SECRET}]}}
      - {{kind: email, address: env@thep-an.example.com, language: vi}}
      - {{kind: mqtt, min_severity: critical}}
operators:
  - id: ops
    park: songlam
    channels:
      - {{kind: email, address: ops@park.example.com}}
"""


def test_a_valid_file_loads_and_routes_by_severity(tmp_path: Path) -> None:
    path = tmp_path / "contacts.yaml"
    path.write_text(GOOD)
    c = load_contacts(path)
    tenant = Recipient("songlam", tenant="thep-an")
    kinds = [type(x) for x in c.routes(tenant, "info")]
    assert kinds == [WebhookContact, EmailContact]
    assert [type(x) for x in c.routes(tenant, "critical")] == [
        WebhookContact, WebhookContact, EmailContact, MqttContact,
    ]  # fmt: skip
    first = c.channels_of(tenant)[0]
    assert isinstance(first, WebhookContact) and first.language == "vi"
    assert [type(x) for x in c.routes(Recipient("songlam", operator="ops"), "info")] == [
        EmailContact
    ]
    assert c.routes(Recipient("songlam", tenant="det-phuoc"), "critical") == []


def problems(text: str) -> list[str]:
    with pytest.raises(ContactsError) as info:
        parse_contacts(text, "contacts.yaml")
    assert isinstance(info.value, ConfigError)  # exit code 2 in the command line
    return info.value.problems


def tenant_with(channel: str) -> str:
    return f"tenants:\n  - park: songlam\n    tenant: thep-an\n    channels:\n      - {channel}\n"


@pytest.mark.parametrize(
    ("channel", "where", "why"),
    [
        (
            '{kind: webhook, url: "http://127.0.0.1:8086/write", secrets: [' + SECRET + "]}",
            "channels[0].webhook.url",
            "127.0.0.1 is a loopback address",
        ),
        (
            '{kind: webhook, url: "https://192.168.1.1/", secrets: [' + SECRET + "]}",
            "channels[0].webhook.url",
            "private address",
        ),
        (
            '{kind: webhook, url: "ftp://example.com/", secrets: [' + SECRET + "]}",
            "channels[0].webhook.url",
            "scheme must be https or http",
        ),
        (
            '{kind: webhook, url: "https://example.com/", secrets: [not-a-secret]}',
            "channels[0].webhook.secrets",
            "secret 1: a webhook secret starts with 'whsec_'",
        ),
        (
            '{kind: webhook, url: "https://example.com/", secrets: []}',
            "channels[0].webhook.secrets",
            "at least 1 item",
        ),
        (
            "{kind: email, address: 'Env <env@x.example.com>'}",
            "channels[0].email.address",
            "is not one e-mail address",
        ),
        (
            '{kind: email, address: "env@x.example.com\\r\\nBcc: all@x.example.com"}',
            "channels[0].email.address",
            "is not one e-mail address",
        ),
        ("{kind: email, address: env@localhost}", "channels[0].email.address", "not one e-mail"),
        ("{kind: mqtt, language: fr}", "channels[0].mqtt.language", "'en' or 'vi'"),
        ("{kind: mqtt, min_severity: urgent}", "channels[0].mqtt.min_severity", "'info'"),
        ("{kind: mqtt, qos: 2}", "channels[0].mqtt.qos", "unknown key (typo?)"),
        ("{kind: sms, number: '+84'}", "channels[0]", "does not match any of the expected tags"),
    ],
)
def test_malformed_channels_are_refused_with_where_and_why(
    channel: str, where: str, why: str
) -> None:
    (problem,) = problems(tenant_with(channel))
    assert problem.startswith(f"contacts.yaml: tenants[0] (songlam/thep-an).{where}: "), problem
    assert why in problem, problem


def test_duplicates_unknown_networks_and_yaml_errors() -> None:
    twice = tenant_with("{kind: mqtt}") + "  - {park: songlam, tenant: thep-an}\n"
    assert "tenant songlam/thep-an is listed twice" in problems(twice)[0]
    assert (
        "'10.0.0.0/33' is not an address or a network"
        in problems("allow_networks: [10.0.0.0/33]\n")[0]
    )
    assert "duplicate key 'tenants'" in problems("tenants: []\ntenants: []\n")[0]
    assert problems("- a\n- b\n")[0] == (
        "contacts.yaml: top level must be a mapping with 'tenants' and 'operators'"
    )


def test_a_webhook_url_belongs_to_one_recipient() -> None:
    """One URL is one endpoint (one backoff, one secret, one batch size): two recipients on
    it would be signed with one's secret and share its batches."""
    hook = f'{{kind: webhook, url: "https://hooks.example.com/p", secrets: [{SECRET}]}}'
    other = f'{{kind: webhook, url: "https://hooks.example.com/p", secrets: [{OTHER_SECRET}]}}'
    shared = (
        tenant_with(hook)
        + f"  - {{park: songlam, tenant: det-phuoc, channels: [{other}]}}\n"
        + f"operators:\n  - {{id: ops, park: songlam, channels: [{hook}]}}\n"
    )
    (found,) = problems(shared)
    assert (
        "webhook https://hooks.example.com/p is tenant songlam/thep-an's and tenant"
        " songlam/det-phuoc's: give each recipient a URL of its own"
    ) in found
    assert "tenant songlam/thep-an's and operator songlam/ops's" in found
    twice = tenant_with(hook) + f"      - {hook}\n"
    assert "is listed twice for tenant songlam/thep-an" in problems(twice)[0]
    apart = tenant_with(hook) + (
        f"  - {{park: songlam, tenant: det-phuoc, channels: [{other.replace('/p', '/q')}]}}\n"
    )
    assert len(parse_contacts(apart).tenants) == 2


def test_the_operators_allow_list_admits_a_private_network() -> None:
    url = '{kind: webhook, url: "http://10.20.1.5/", secrets: [' + SECRET + "]}"
    assert "private address" in problems(tenant_with(url))[0]
    parse_contacts("allow_networks: [10.20.0.0/16]\n" + tenant_with(url))


def test_an_empty_file_has_no_contacts() -> None:
    assert parse_contacts("").tenants == []
