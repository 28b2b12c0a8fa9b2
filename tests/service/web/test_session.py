"""The session cookie and CSRF tokens: signed, bounded in time, and holding no key. Pure."""

from __future__ import annotations

from service.web.session import Signer, web_secret

SECRET = web_secret(b"a test pepper of at least thirty-two characters")
T0 = 1_800_000_000.0


def test_a_session_holds_the_key_id_for_its_lifetime_only() -> None:
    s = Signer(SECRET, 8 * 3600)
    cookie = s.session_cookie("key-1", T0)
    assert "pfk_" not in cookie
    session = s.session(cookie, T0 + 3600)
    assert session is not None and session.key_id == "key-1"
    assert s.session(cookie, T0 + 8 * 3600 - 1) is not None
    assert s.session(cookie, T0 + 8 * 3600) is None  # expired
    assert s.session(cookie, T0 - 60) is None  # from the future: not ours to trust


def test_a_cookie_not_signed_here_is_no_session() -> None:
    s = Signer(SECRET, 3600)
    cookie = s.session_cookie("key-1", T0)
    other = Signer(web_secret(b"another pepper, another park, other secret"), 3600)
    assert other.session(cookie, T0) is None
    payload, _, sig = cookie.rpartition(".")
    assert s.session(payload + "." + sig[::-1], T0) is None
    assert s.session(None, T0) is None and s.session("", T0) is None
    assert s.session("garbage", T0) is None
    # a CSRF token is not a session, and the other way round (different salts)
    assert s.session(s.new_csrf(), T0) is None
    assert not s.csrf_ok(cookie, cookie)


def test_csrf_needs_both_copies_the_same_and_signed_here() -> None:
    s = Signer(SECRET, 3600)
    token = s.new_csrf()
    assert s.csrf_ok(token, token)
    assert token != s.new_csrf()  # random per browser
    assert not s.csrf_ok(token, s.new_csrf())  # another browser's
    assert not s.csrf_ok(token, "")
    assert not s.csrf_ok(None, token)
    assert not s.csrf_ok("forged", "forged")
    other = Signer(web_secret(b"another pepper, another park, other secret"), 3600)
    forged = other.new_csrf()
    assert not s.csrf_ok(forged, forged)
