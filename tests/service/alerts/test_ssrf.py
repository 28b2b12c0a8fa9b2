"""The webhook URL check, with literal addresses and with names (a scripted resolver for
names that would otherwise need a DNS server, the system's for ``localhost``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from service.alerts.ssrf import Unresolvable, UnsafeUrl, check_webhook_url, parse_networks

NAMES = {
    "hooks.example.com": ["93.184.215.14"],
    "internal.example.com": ["10.20.30.40"],
    "mixed.example.com": ["93.184.215.14", "192.168.1.9"],  # one bad address is enough
    "metadata.example.com": ["169.254.169.254"],
    "v6.example.com": ["2606:4700::6810:84e5"],
    "v6-local.example.com": ["fe80::1%eth0"],
}


def resolve(host: str, port: int) -> Sequence[str]:
    if host not in NAMES:
        raise Unresolvable(f"host {host!r} does not resolve")
    return NAMES[host]


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "http://93.184.215.14:8080/hook",
        "https://hooks.example.com/parkflow",
        "https://v6.example.com/x",
        "https://[2606:4700::6810:84e5]/x",
    ],
)
def test_public_addresses_pass(url: str) -> None:
    assert check_webhook_url(url, resolve=resolve)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8086/write", "loopback"),
        ("http://127.1.2.3/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.0.1/admin", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.251/", "multicast"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://100.64.0.1/", "not a public address"),
        ("https://internal.example.com/", "internal.example.com \\(10.20.30.40\\) is a private"),
        ("https://mixed.example.com/", "192.168.1.9"),
        ("https://metadata.example.com/", "link-local"),
        ("https://v6-local.example.com/", "link-local"),
        ("ftp://93.184.215.14/", "scheme must be https or http"),
        ("file:///etc/passwd", "scheme must be https or http"),
        ("https:///nohost", "names no host"),
        ("https://user:pw@93.184.215.14/", "no user or password"),
        ("https://93.184.215.14:99999/", "not a valid URL"),
        ("https://nowhere.example.com/", "does not resolve"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_webhook_url(url, resolve=resolve)


def test_names_resolve_through_the_system_resolver() -> None:
    with pytest.raises(UnsafeUrl, match=r"localhost .* loopback"):
        check_webhook_url("http://localhost:9000/hook")
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_webhook_url("http://2130706433/")  # 127.0.0.1 as one decimal number


def test_the_operator_can_allow_a_network() -> None:
    allowed = parse_networks(["10.20.0.0/16", "127.0.0.1"])
    assert check_webhook_url("https://internal.example.com/", allowed, resolve)
    assert check_webhook_url("http://127.0.0.1:9000/", allowed)
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_webhook_url("http://127.0.0.2:9000/", allowed)  # only what was listed
    with pytest.raises(UnsafeUrl, match="private"):
        check_webhook_url("http://10.21.0.1/", allowed)


def test_allow_list_entries_must_be_networks() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an address or a network"):
        parse_networks(["10.0.0.0/33"])
