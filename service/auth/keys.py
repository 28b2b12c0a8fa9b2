"""API keys: made here, shown once, stored as an HMAC-SHA256 digest under a server pepper.

Why a keyed hash and not argon2: a key is 256 random bits, not a password, so a slow hash
adds nothing against guessing; what it would cost is tens of milliseconds of CPU on every
request of a 2-core server. The digest is also what the key is looked up by (one indexed
read), and without the pepper, which is never in the database, a copy of the table verifies
nothing. The pepper is a file of the service's own (created once, mode 0600) or a setting.

A process remembers the keys it has seen (digest -> principal) for ``CACHE_S``: at hundreds
of requests a second the database read was the dearest part of a request's check, and a
known key is answered without it (nor the worker thread that read goes through). A key
revoked through the same process is forgotten at once; one revoked by another process
(``parkflow keys revoke``, another API worker) is refused by this one within ``CACHE_S``.
Unknown keys are never remembered: a flood of made-up ones cannot grow the memory, and a key
created elsewhere is found on its first use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from parkflow.errors import ConfigError, InputError
from parkflow.timeunits import now_ms as wall_ms
from service.auth.access import OPERATOR, TENANT, Principal, Role
from service.state import Database
from service.state.tables import api_keys

PREFIX = "pfk_"  # so a key in a log, a ticket or a repository is recognisable as one
_MIN_PEPPER = 32
CACHE_S = 1.0  # how long a process trusts a live key it has read without reading it again
_CACHE_MAX = 10_000  # keys remembered at most (then forgotten all at once, read again)


@dataclass(frozen=True, slots=True)
class Pepper:
    secret: bytes

    def digest(self, key: str) -> str:
        return hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()

    def reference(self, text: str) -> str:
        """An opaque, stable reference for ``text`` (an opportunity id that names meters):
        the same for every request, meaningless without the pepper."""
        mac = hmac.new(self.secret, b"ref:" + text.encode(), hashlib.sha256).hexdigest()
        return f"ref-{mac[:16]}"

    def __repr__(self) -> str:  # never in a traceback or a log line
        return "Pepper(***)"


def load_pepper(value: str | None, path: Path) -> Pepper:
    """The pepper from a setting, else from ``path`` (created with a random one when missing).
    Every process of a park must use the same one: keys made by ``parkflow keys create`` are
    checked by ``parkflow serve``."""
    if value:
        if len(value) < _MIN_PEPPER:
            raise ConfigError("settings", [f"api_key_pepper: at least {_MIN_PEPPER} characters"])
        return Pepper(value.encode())
    try:
        return Pepper(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return Pepper(path.read_bytes().strip())
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return Pepper(secret)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: everything but the key."""

    id: str
    name: str
    role: Role
    park: str | None
    tenant: str | None
    created_ms: int
    created_by: str
    revoked_ms: int | None

    def principal(self) -> Principal:
        return Principal(self.id, self.name, self.role, self.park, self.tenant)


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once, to the operator who made it; never stored or logged

    def __repr__(self) -> str:
        return f"NewKey(key={self.key!r}, secret=***)"


class KeyRepository:
    def __init__(self, db: Database, pepper: Pepper, cache_s: float = CACHE_S) -> None:
        self.db = db
        self.pepper = pepper
        self.cache_s = cache_s
        # digest -> (when it was read, monotonic s; the live key's principal)
        self._seen: dict[str, tuple[float, Principal]] = {}
        self._revokes = 0  # revokes through this repository: a read begun before one is not kept
        self._lock = threading.Lock()

    def create(
        self,
        *,
        name: str,
        role: str,
        park: str | None,
        tenant: str | None,
        by: str,
        now_ms: int | None = None,
    ) -> NewKey:
        if role not in (OPERATOR, TENANT):
            raise InputError(f"role is operator or tenant, not {role!r}")
        if role == TENANT and (not park or not tenant):
            raise InputError("a tenant key names its park and tenant")
        if role == OPERATOR and tenant:
            raise InputError("an operator key names no tenant")
        if not name.strip():
            raise InputError("a key has a name (who or what uses it)")
        secret = PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=str(uuid.uuid4()),
            name=name.strip()[:200],
            role=OPERATOR if role == OPERATOR else TENANT,
            park=park or None,
            tenant=tenant or None,
            created_ms=wall_ms() if now_ms is None else now_ms,
            created_by=by[:200],
            revoked_ms=None,
        )
        with self.db.transaction() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=key.name,
                    role=key.role,
                    park=key.park,
                    tenant=key.tenant,
                    digest=self.pepper.digest(secret),
                    created_ms=key.created_ms,
                    created_by=key.created_by,
                    revoked_ms=None,
                )
            )
        return NewKey(key, secret)

    def list(self, *, park: str | None = None, include_revoked: bool = False) -> list[ApiKey]:
        query = sa.select(*_COLUMNS).order_by(api_keys.c.created_ms, api_keys.c.id)
        if park is not None:
            query = query.where(api_keys.c.park == park)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_ms.is_(None))
        with self.db.connect() as conn:
            return [ApiKey(*row) for row in conn.execute(query)]

    def get(self, key_id: str) -> ApiKey | None:
        with self.db.connect() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(api_keys.c.id == key_id)).first()
        return None if row is None else ApiKey(*row)

    def revoke(self, key_id: str, now_ms: int | None = None) -> ApiKey:
        """Revoke a key (again: a no-op); the row stays, so the history still names it."""
        at = wall_ms() if now_ms is None else now_ms
        with self.db.transaction() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_ms.is_(None))
                .values(revoked_ms=at)
            )
            row = conn.execute(sa.select(*_COLUMNS).where(api_keys.c.id == key_id)).first()
        with self._lock:  # refused from the next request on
            self._revokes += 1
            self._seen = {d: seen for d, seen in self._seen.items() if seen[1].key_id != key_id}
        if row is None:
            raise InputError(f"no API key {key_id}")
        return ApiKey(*row)

    def cached(self, secret: str) -> tuple[bool, Principal | None]:
        """Whether the answer is known without the database, and the answer: a malformed
        key is refused, a live key read within ``cache_s`` is its principal; anything else
        is for ``authenticate``."""
        if not _well_formed(secret):
            return True, None
        seen = self._seen.get(self.pepper.digest(secret))
        if seen is None or time.monotonic() - seen[0] > self.cache_s:
            return False, None
        return True, seen[1]

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of a live key, or None (unknown, malformed or revoked: the caller
        says the same to all three), read from the database."""
        if not _well_formed(secret):
            return None
        digest = self.pepper.digest(secret)
        query = sa.select(*_COLUMNS).where(
            api_keys.c.digest == digest, api_keys.c.revoked_ms.is_(None)
        )
        read_at, revokes = time.monotonic(), self._revokes
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            with self._lock:
                self._seen.pop(digest, None)
            return None
        principal = ApiKey(*row).principal()
        with self._lock:
            if revokes == self._revokes:  # no revoke since the read began
                if len(self._seen) >= _CACHE_MAX:
                    self._seen = {}
                self._seen[digest] = (read_at, principal)
        return principal


def _well_formed(secret: str) -> bool:
    return secret.startswith(PREFIX) and len(secret) <= 200


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.role,
    api_keys.c.park,
    api_keys.c.tenant,
    api_keys.c.created_ms,
    api_keys.c.created_by,
    api_keys.c.revoked_ms,
)
