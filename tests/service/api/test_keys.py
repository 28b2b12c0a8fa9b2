"""API keys on both operational databases: stored as a keyed digest only, created, listed and
revoked by the repository and by ``parkflow keys``; the pepper file made once, private."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from parkflow.cli import EXIT_BAD_INPUT, EXIT_NOTHING, EXIT_OK, main
from parkflow.errors import ConfigError, InputError
from parkflow.registry import SAMPLE_REGISTRY
from service.auth import KeyRepository, Pepper, load_pepper
from service.state import Database
from service.state.tables import api_keys

PEPPER = Pepper(b"p" * 40)


def test_a_key_is_stored_as_its_digest_and_revoked_at_once(database: Database) -> None:
    keys = KeyRepository(database, PEPPER)
    made = keys.create(name="dye house", role="tenant", park="songlam", tenant="det-phuoc", by="t")
    assert made.secret.startswith("pfk_") and len(made.secret) > 40
    assert made.secret not in repr(made)
    with database.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(api_keys))]
    assert len(stored) == 1 and made.secret not in str(stored)
    assert PEPPER.digest(made.secret) in str(stored)
    who = keys.authenticate(made.secret)
    assert who is not None and (who.role, who.park, who.tenant) == (
        "tenant",
        "songlam",
        "det-phuoc",
    )
    # the same key under another pepper, a near miss, garbage: nobody
    assert KeyRepository(database, Pepper(b"q" * 40)).authenticate(made.secret) is None
    assert keys.authenticate(made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B")) is None
    assert keys.authenticate("") is None and keys.authenticate("pfk_" + "x" * 500) is None
    assert [k.id for k in keys.list()] == [made.key.id]
    revoked = keys.revoke(made.key.id)
    assert revoked.revoked_ms is not None
    assert keys.authenticate(made.secret) is None
    assert keys.list() == [] and [k.id for k in keys.list(include_revoked=True)] == [made.key.id]
    assert keys.revoke(made.key.id).revoked_ms == revoked.revoked_ms  # again: unchanged
    with pytest.raises(InputError):
        keys.revoke("no-such-key")


def test_a_known_key_is_answered_without_the_database_and_forgotten_when_revoked(
    database: Database,
) -> None:
    keys = KeyRepository(database, PEPPER, cache_s=60.0)
    made = keys.create(name="dye house", role="tenant", park="songlam", tenant="det-phuoc", by="t")
    other = keys.create(name="wwtp", role="tenant", park="songlam", tenant="wwtp", by="t")
    assert keys.cached(made.secret) == (False, None)  # never read: for the database
    assert keys.cached("not a key") == (True, None)  # malformed: refused without it
    who = keys.authenticate(made.secret)
    assert who is not None and keys.cached(made.secret) == (True, who)
    assert keys.authenticate(other.secret) is not None
    # an unknown key is never remembered: each try reads again
    assert keys.authenticate("pfk_" + "z" * 43) is None
    assert keys.cached("pfk_" + "z" * 43) == (False, None)
    # the remembered answer is the database's while the key lives: its row is not read again
    with database.transaction() as conn:
        conn.execute(api_keys.update().values(name="renamed under the cache"))
    assert keys.cached(made.secret) == (True, who)
    keys.revoke(made.key.id)  # through this repository: forgotten at once, the other kept
    assert keys.cached(made.secret) == (False, None)
    assert keys.authenticate(made.secret) is None
    assert keys.cached(other.secret)[0]


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    database: Database,
) -> None:
    keys = KeyRepository(database, PEPPER, cache_s=0.2)
    elsewhere = KeyRepository(database, PEPPER)  # `parkflow keys revoke`, another worker
    made = keys.create(name="dye house", role="tenant", park="songlam", tenant="det-phuoc", by="t")
    assert keys.authenticate(made.secret) is not None
    elsewhere.revoke(made.key.id)
    assert keys.cached(made.secret)[0]  # still trusted, for at most cache_s
    time.sleep(0.25)
    assert keys.cached(made.secret) == (False, None)
    assert keys.authenticate(made.secret) is None


@pytest.mark.parametrize(
    ("role", "park", "tenant"),
    [
        ("tenant", "songlam", None),
        ("tenant", None, "det-phuoc"),
        ("operator", "songlam", "x"),
        ("admin", None, None),
    ],
)
def test_a_key_names_a_scope_that_fits_its_role(
    database: Database, role: str, park: str | None, tenant: str | None
) -> None:
    with pytest.raises(InputError):
        KeyRepository(database, PEPPER).create(
            name="k", role=role, park=park, tenant=tenant, by="t"
        )


def test_the_pepper_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "pepper"
    first = load_pepper(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_pepper(None, path) == first and "***" in repr(first)
    assert load_pepper("s" * 32, path) != first
    with pytest.raises(ConfigError):
        load_pepper("short", path)


def test_keys_from_the_command_line(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARKFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("PARKFLOW_API_KEY_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.setenv("PARKFLOW_REGISTRY", str(SAMPLE_REGISTRY))
    assert main(["keys", "list"]) == EXIT_NOTHING
    capsys.readouterr()
    args = ["keys", "create", "--name", "dye house", "--role", "tenant", "--park", "songlam"]
    assert main([*args, "--tenant", "det-phuoc"]) == EXIT_OK
    out = capsys.readouterr().out
    secret = out.split()[-1]
    key_id = out.split()[1]
    assert secret.startswith("pfk_")
    assert main([*args, "--tenant", "no-such-tenant"]) == EXIT_BAD_INPUT
    capsys.readouterr()
    assert main(["keys", "list"]) == EXIT_OK
    listed = capsys.readouterr().out
    assert key_id in listed and "songlam/det-phuoc" in listed and secret not in listed
    assert main(["keys", "revoke", key_id]) == EXIT_OK
    capsys.readouterr()
    assert main(["keys", "list"]) == EXIT_NOTHING
    assert main(["keys", "list", "--all"]) == EXIT_OK
    assert key_id in capsys.readouterr().out
    # the service's pepper is the file next to the state: the key was made under it
    db = Database(db_url)
    try:
        pepper = load_pepper(None, tmp_path / "parkflow-api-pepper")
        assert KeyRepository(db, pepper).authenticate(secret) is None  # revoked
        assert KeyRepository(db, pepper).list(include_revoked=True)[0].id == key_id
    finally:
        db.close()
