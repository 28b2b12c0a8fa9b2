"""The pages' session cookie and CSRF tokens, signed with itsdangerous. Pure: the clock is
passed in.

The cookie holds the key's id and when the session began, never the key: a stolen cookie
ends with the key's revocation (each request looks the id up) or with its lifetime, and the
key itself is never written to the browser. CSRF is a double submit: a signed random token
in a cookie of its own and in every form; a POST whose two copies differ, or whose token this
server did not sign, is refused. SameSite=Strict on both cookies is the second line.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

SESSION_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"
LANG_COOKIE = "pf_lang"
CSRF_FIELD = "csrf"


def web_secret(pepper_secret: bytes) -> bytes:
    """The signing secret, derived from the API keys' pepper: every process of a park shares
    it already, and it is never in the database, so no second secret needs keeping."""
    return hmac.new(pepper_secret, b"parkflow web session", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    started_s: int


class Signer:
    def __init__(self, secret: bytes, lifetime_s: float) -> None:
        self._sessions = URLSafeSerializer(secret, salt="parkflow-web-session")
        self._csrf = URLSafeSerializer(secret, salt="parkflow-web-csrf")
        self.lifetime_s = lifetime_s

    def session_cookie(self, key_id: str, now_s: float) -> str:
        return self._sessions.dumps({"k": key_id, "t": int(now_s)})

    def session(self, cookie: str | None, now_s: float) -> Session | None:
        """The session of a cookie this server signed and whose lifetime has not run out."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        key_id, started = data.get("k"), data.get("t")
        if not isinstance(key_id, str) or not isinstance(started, int):
            return None
        if not started <= now_s < started + self.lifetime_s:
            return None
        return Session(key_id, started)

    def new_csrf(self) -> str:
        return self._csrf.dumps(secrets.token_urlsafe(18))

    def csrf_ok(self, cookie: str | None, form: str | None) -> bool:
        """Both copies present, the same, and signed here."""
        if not cookie or not form or not hmac.compare_digest(cookie, form):
            return False
        try:
            self._csrf.loads(cookie)
        except BadSignature:
            return False
        return True
