"""Mosquitto's password file, read and written by parkflow: one ``user:hash`` line per broker
user, the hash in Mosquitto 2's ``$7$`` form (PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte
salt, base64), which the broker checks at every CONNECT and rereads on SIGHUP. Pure apart from
the file it is given; the file is replaced whole (written beside it, then renamed) keeping its
owner and mode, so a broker reloading mid-write never reads half of it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
# A broker user name parkflow writes: no ':' (the file's separator), no MQTT wildcard or topic
# separator, no space or control character (a line of its own in the ACL).
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_user(name: str) -> str:
    if not _USER.match(name):
        raise ValueError(
            f"broker user {name!r}: letters, digits, '.', '-' or '_' only (no '+', '#', '/',"
            " ':', space or control character), at most 128"
        )
    return name


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    b64 = base64.b64encode
    return f"$7${ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def verify(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as the broker would decide)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), parts[4]
    mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(base64.b64encode(mine).decode(), digest)


def read(path: Path) -> dict[str, str]:
    """user -> hash, in file order (a missing file: no users)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, hashed = line.partition(":")
            out[user] = hashed
    return out


def write(path: Path, users: dict[str, str]) -> None:
    """The password file with exactly these users, replaced whole (``replace_text``). What an
    administrator wrote stays where it was: comment and blank lines, and each user's line in
    its place (with its new hash); users no longer wanted are dropped, new ones appended.
    Users parkflow did not make are kept as they are (``check_user`` is for the names it
    makes); only what would break the file's lines is refused."""
    for u, h in users.items():
        if not u or any(c in u for c in ":\r\n") or any(c in h for c in "\r\n"):
            raise ValueError(f"broker user {u!r}: not a line of a password file")
    lines: list[str] = []
    placed: set[str] = set()
    old = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in old:
        if not line.strip() or line.startswith("#"):
            lines.append(line)
            continue
        user = line.partition(":")[0]
        if user in users and user not in placed:
            lines.append(f"{user}:{users[user]}")
            placed.add(user)
    lines += [f"{u}:{h}" for u, h in users.items() if u not in placed]
    replace_text(path, "".join(f"{line}\n" for line in lines))


def replace_text(path: Path, text: str) -> None:
    """Replace a broker file whole: written and synced beside it, then renamed over it,
    keeping its owner, group and mode (the broker's user reads it on a reload), never
    readable by others; a new file is 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if path.exists():  # e.g. root:mosquitto 0640, as docs/operations.md sets it up
            st = path.stat()
            with contextlib.suppress(PermissionError):  # not root: the file stays the caller's
                os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o740)  # never readable by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)  # the rename itself survives a power cut
    finally:
        os.close(dirfd)


def new_password() -> str:
    """32 URL-safe characters (192 bits): typed once into the gateway's configuration."""
    return secrets.token_urlsafe(24)
