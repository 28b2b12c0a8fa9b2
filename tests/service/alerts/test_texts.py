"""Alert texts: both languages from one table, and the privacy rule before consent, checked on
what every channel actually sends."""

from __future__ import annotations

import json
import string
import uuid
from datetime import UTC, datetime
from email import message_from_bytes

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.alerts.channels import LANGUAGES, Language, Notification, Recipient
from service.alerts.channels.mqtt import encode, topic
from service.alerts.channels.smtp import SmtpServer, message
from service.alerts.channels.webhook import signed_request, signer
from service.alerts.delivery import Disabled
from service.alerts.texts import (
    OPERATOR,
    TEMPLATES,
    OpportunityFacts,
    Side,
    SurplusFacts,
    endpoint_disabled,
    money,
    notification,
    number,
    render,
    round_distance,
    round_sig,
)
from service.events import OPPORTUNITY_GONE, OPPORTUNITY_NEW, SURPLUS_GROWN
from tests.service.alerts.build import SECRET

DYE = Side("dye", "Saigon Dyeing Co", "eff-1", "water.treated_effluent", "m3", 212.37, 148.6,
           412_345_678.0, (120.5, 80.25))  # fmt: skip
PAPER = Side("paper", "Mekong Paper JSC", "proc-water", "water.potable", "m3", 333.3, 148.6,
             1_234_567_890.0, (410.75, 95.5))  # fmt: skip
FACTS = OpportunityFacts(
    OPPORTUNITY_NEW, "hp", "R-7K2Q", "hp:eff-1>proc-water:effluent_reuse", "effluent_reuse",
    DYE, PAPER, 287.4, 1.6e9,
)  # fmt: skip
SMTP = SmtpServer("127.0.0.1", "alerts@park.example.com")
AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_template_exists_in_both_languages_with_the_same_placeholders() -> None:
    for kind, by_language in TEMPLATES.items():
        assert set(by_language) == set(LANGUAGES), kind
        en, vi = by_language["en"], by_language["vi"]
        assert set(en) == set(vi), kind
        if kind in (OPPORTUNITY_NEW, OPPORTUNITY_GONE):
            assert set(en) == {
                "anonymous_supplier", "anonymous_receiver", "named_supplier", "named_receiver",
                "operator",
            }  # fmt: skip
        for variant in en:
            for i in (0, 1):
                assert fields(en[variant][i]) == fields(vi[variant][i]), (kind, variant, i)


def test_the_issues_example_before_consent() -> None:
    r = render(FACTS, "dye", consented=False, language="en")
    assert r.text == (
        "A tenant about 300 m away could use about 150 m3/day of your treated effluent, worth"
        " about 410 million VND/yr to you. Reference R-7K2Q: ask the park operator to introduce"
        " you."
    )
    assert r.data == {
        "ref": "R-7K2Q",
        "role": "supplier",
        "resource": "water.treated_effluent",
        "distance_m": 300,
        "quantity_per_day": 150.0,
        "unit": "m3",
        "value_vnd_per_year": 410_000_000.0,
        "introduced": False,
    }
    vi = render(FACTS, "dye", consented=False, language="vi").text
    assert "khoảng 300 m" in vi and "150 m3/ngày" in vi and "410 triệu VND/năm" in vi


def test_the_receiver_hears_its_own_value_only() -> None:
    r = render(FACTS, "paper", consented=False, language="en")
    assert "1.2 billion VND/yr" in r.text
    assert "410" not in r.text and "Saigon" not in r.text and "dye" not in r.text


def test_consent_names_both_parties_and_withdrawal_hides_them_again() -> None:
    named = render(FACTS, "dye", consented=True, language="en")
    assert "Mekong Paper JSC (paper, meter proc-water)" in named.text
    assert named.data["counterpart"] == {
        "tenant": "paper",
        "name": "Mekong Paper JSC",
        "meter": "proc-water",
        "location": {"x_m": 410.75, "y_m": 95.5},
    }
    assert named.data["introduced"] is True
    hidden = render(FACTS, "dye", consented=False, language="en")
    assert "Mekong" not in hidden.text + json.dumps(hidden.data)


def test_operators_see_everything() -> None:
    for language in LANGUAGES:
        r = render(FACTS, OPERATOR, consented=False, language=language)
        text = r.subject + r.text
        for s in ("Saigon Dyeing Co", "Mekong Paper JSC", "eff-1", "proc-water", "dye", "paper"):
            assert s in text
        assert number(212.37, language, 1) in text and number(333.3, language, 1) in text
        assert r.data["receiver"]["location"] == {"x_m": 410.75, "y_m": 95.5}


def test_a_tenant_not_party_to_the_opportunity_gets_nothing() -> None:
    with pytest.raises(ValueError, match="not a party"):
        render(FACTS, "steel", consented=True, language="en")
    with pytest.raises(ValueError, match="park"):
        notification(FACTS, Recipient("other", tenant="dye"), False, "en", str(uuid.uuid4()), AT)


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [
        (147.3, 2, 150.0),
        (12345.0, 2, 12000.0),
        (0.0444, 2, 0.044),
        (-987.0, 2, -990.0),
        (0.0, 2, 0.0),
    ],
)
def test_round_sig(x: float, digits: int, expected: float) -> None:
    assert round_sig(x, digits) == pytest.approx(expected)


def test_distances_and_money_round() -> None:
    assert [round_distance(m) for m in (0, 49, 151, 287.4, 1049)] == [100, 100, 200, 300, 1000]
    assert money(-12_345_678, "en") == "costing you about 12 million VND/yr"
    assert money(5.5e9, "vi") == "mang lại khoảng 5,5 tỷ VND/năm cho quý công ty"
    assert money(350_123, "en") == "worth about 350,000 VND/yr to you"


# The property: whatever the facts, before consent nothing a channel sends carries the
# counterpart's identity, its meters, its exact quantities or its position.

ids = st.from_regex(r"\A[a-z]{3}[0-9]{4}[a-z]{2}\Z")
names = st.from_regex(r"\A[A-Z][a-z]{5,9} (Dyeing|Paper|Foods|Steel|Brewery) (JSC|Co|Ltd)\Z")
# at least three significant figures that rounding to two changes, and a fractional part
quantities = st.floats(100.0, 1e6).filter(lambda x: round_sig(x) != round(x, 1) and x % 1 > 0.05)
moneys = st.floats(1e6, 1e11).filter(lambda x: round_sig(x) != round(x))
coords = st.floats(100.0, 5000.0).filter(lambda x: round_sig(x) != round(x, 1) and x % 1 > 0.05)


@st.composite
def sides(draw: st.DrawFn) -> Side:
    return Side(
        draw(ids),
        draw(names),
        draw(ids),
        draw(st.sampled_from(["water.treated_effluent", "energy.steam", "waste.fly_ash"])),
        draw(st.sampled_from(["m3", "kWh", "t"])),
        draw(quantities),
        draw(quantities),
        draw(moneys | moneys.map(lambda v: -v)),
        draw(st.none() | st.tuples(coords, coords)),
    )


def forms(x: float) -> set[str]:
    """The ways a number could be written out: Python's, and each language's."""
    out = {repr(x), f"{x:.1f}", f"{x:.2f}", f"{x:,.1f}", f"{x:,.2f}"}
    out |= {number(x, "vi", 1), number(x, "vi", 2)}
    if abs(x) >= 1e6:  # money: whole numbers too
        out |= {f"{abs(x):.0f}", f"{abs(x):,.0f}", number(abs(x), "vi")}
    return out


def sent(n: Notification) -> list[str]:
    """Everything the three channels would put on the wire for ``n``, raw and decoded."""
    headers, body = signed_request(n, [signer(SECRET)], AT.timestamp())
    mail = message(n, SMTP, "env@tenant.example.com")
    raw = mail.as_bytes()
    parsed = message_from_bytes(raw)
    decoded = parsed.get_payload(decode=True)
    assert isinstance(decoded, bytes)
    return [
        json.dumps(headers),
        body.decode(),
        json.dumps(json.loads(body), ensure_ascii=False),
        topic(n),
        encode(n).decode(),
        raw.decode("ascii", "replace"),
        str(parsed["Subject"]),
        n.subject,
        decoded.decode("utf-8"),
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.tuples(sides(), sides()),
    st.sampled_from(["supplier", "receiver"]),
    st.sampled_from(LANGUAGES),
    st.sampled_from([OPPORTUNITY_NEW, OPPORTUNITY_GONE]),
    st.floats(1.0, 20_000.0),
    moneys,
)
def test_no_channel_leaks_the_counterpart_before_consent(
    pair: tuple[Side, Side],
    role: str,
    language: Language,
    kind: str,
    distance_m: float,
    park_value: float,
) -> None:
    supplier, receiver = pair
    own, other = (supplier, receiver) if role == "supplier" else (receiver, supplier)
    words = {supplier.tenant, supplier.name, supplier.meter, receiver.tenant, receiver.name}
    assume(len(words | {receiver.meter}) == 6)
    assume(not any(a != b and a in b for a in words for b in words))
    facts = OpportunityFacts(
        kind, "hp", "R-" + uuid.uuid4().hex[:8],
        f"hp:{supplier.meter}>{receiver.meter}:rule", "rule", supplier, receiver, distance_m,
        park_value,
    )  # fmt: skip
    n = notification(facts, Recipient("hp", tenant=own.tenant), False, language,
                     str(uuid.uuid4()), AT)  # fmt: skip
    forbidden = {other.tenant, other.name, other.meter, facts.opportunity_id}
    for x in (other.own_per_day, other.exchanged_per_day, other.vnd_per_year,
              own.own_per_day, own.exchanged_per_day, own.vnd_per_year, park_value):  # fmt: skip
        forbidden |= forms(x)
    if other.location is not None:
        for c in other.location:
            forbidden |= forms(c)
    for out in sent(n):
        for f in forbidden:
            assert f not in out, (f, out)
    # and consent does reveal the counterpart, on every channel
    named = notification(facts, Recipient("hp", tenant=own.tenant), True, language,
                         str(uuid.uuid4()), AT)  # fmt: skip
    assert all(other.name in out for out in sent(named)[1:3])


def test_the_operator_hears_of_a_disabled_endpoint_in_either_language() -> None:
    d = Disabled(AT, "HTTP 410 Gone", True, "webhook", Recipient("hp", tenant="dye"))
    en, vi = endpoint_disabled(d, "en"), endpoint_disabled(d, "vi")
    assert en.subject == "webhook endpoint of hp/dye disabled"
    assert "HTTP 410 Gone" in en.text and "HTTP 410 Gone" in vi.text
    assert vi.subject == "Đã tắt kênh webhook của hp/dye"
    assert en.severity == "warning" and en.data["gone"] is True


def test_surplus_alerts_go_to_their_tenant_and_the_operator_only() -> None:
    f = SurplusFacts(
        SURPLUS_GROWN, "hp", "R1", "hp:eff-1:continuous", "dye", "Saigon Dyeing Co", "eff-1",
        "water.treated_effluent", "m3", 212.37, 140.0, 25, 28,
    )  # fmt: skip
    own = render(f, "dye", consented=False, language="en")
    assert own.text == (
        "Your meter eff-1 (treated effluent): the surplus grew from about 140 m3/day to about"
        " 210 m3/day. Reference R1."
    )
    assert "lên khoảng 210 m3/ngày" in render(f, "dye", False, "vi").text
    assert "212.4 m3/day" in render(f, OPERATOR, False, "en").text
    with pytest.raises(ValueError, match="not a party to this surplus"):
        render(f, "paper", consented=True, language="en")
