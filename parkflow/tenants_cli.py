"""``parkflow tenants provision|revoke``: a tenant's credentials in one step, printed once.

Provisioning gives the tenant's gateway a broker user (``{park}.{tenant}``, a new random
password hashed into Mosquitto's password file) and writes the ACL from the registry (its own
meters' topics to write, its own alerts topic to read), and makes the tenant's API key for its
portal. Revoking removes the broker user and revokes every API key of the tenant. Mosquitto
rereads both files on SIGHUP (``systemctl reload mosquitto``): until then it keeps the old ones.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from parkflow.errors import InputError

if TYPE_CHECKING:
    from service.settings import ServiceSettings

EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tp = sub.add_parser(
        "tenants", help="a tenant's broker credentials, ACL and API key: provision, revoke"
    ).add_subparsers(dest="action", required=True)
    pv = tp.add_parser("provision", help="broker user, ACL and API key (printed once)")
    pv.add_argument(
        "--rotate", action="store_true", help="a new broker password for a provisioned tenant"
    )
    rv = tp.add_parser("revoke", help="remove the broker user and revoke the tenant's API keys")
    for p in (pv, rv):
        p.add_argument("tenant")
        p.add_argument("--park", help="the tenant's park (needed when the registry has several)")
        p.add_argument("--passwd", type=Path, required=True, help="Mosquitto's password file")
        p.add_argument(
            "--acl", type=Path, help="Mosquitto's ACL file, rewritten from the registry if given"
        )
        p.add_argument(
            "--ingest-user",
            action="append",
            help="ingestor broker users for the ACL (repeat; default parkflow-ingest-1 and -2)",
        )
        p.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
        p.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")
        p.set_defaults(func=_cmd_tenants)


def _cmd_tenants(args: argparse.Namespace) -> int:
    from ingest.mqtt import passwords
    from ingest.mqtt.acl import DEFAULT_INGEST_USERS, gateway_user, mosquitto_acl
    from parkflow.cli import _service_settings

    settings = _service_settings(args)
    registry = settings.load_registry()
    try:
        passwords.check_user(args.tenant)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.park is None and len(registry.parks) > 1:
        raise InputError("--park: the registry has several parks")
    parks = [p for p in registry.parks.values() if args.park in (None, p.id)]
    park = next((p.id for p in parks if any(t.id == args.tenant for t in p.tenants)), None)
    if park is None and args.action == "revoke" and args.park:
        park = args.park  # a tenant already gone from the registry is still revoked
    if park is None:
        raise InputError(f"no tenant {args.tenant} in the registry (add it there first)")
    user = gateway_user(park, args.tenant)
    acl = None
    if args.acl is not None:
        try:
            acl = mosquitto_acl(registry, ingest_users=args.ingest_user or DEFAULT_INGEST_USERS)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    try:
        with _locked(args.passwd):  # two provisionings at once: both users end up in the file
            return _apply(args, settings, park, user, acl)
    except PermissionError as exc:
        raise InputError(
            f"{exc.filename}: not writable by this user (run as root, or as a member of the"
            " broker's group in a directory it may write)"
        ) from None


def _apply(
    args: argparse.Namespace, settings: ServiceSettings, park: str, user: str, acl: str | None
) -> int:
    from ingest.mqtt import passwords
    from service.api.context import pepper_of
    from service.auth import KeyRepository
    from service.state import Database, require_current

    users = passwords.read(args.passwd)
    db = Database(args.url or settings.resolved_database_url())
    try:
        require_current(db)
        keys = KeyRepository(db, pepper_of(settings))
        if args.action == "provision":
            if user in users and not args.rotate:
                raise InputError(f"{user} is provisioned already (--rotate for a new password)")
            password = passwords.new_password()
            users[user] = passwords.hash_password(password)
            passwords.write(args.passwd, users)
            if acl is not None:
                passwords.replace_text(args.acl, acl)
            print(f"tenant {park}/{args.tenant}: store these now, they are not shown again")
            print(f"  broker user:     {user}")
            print(f"  broker password: {password}")
            if args.rotate:
                print("  API keys unchanged (parkflow keys create|revoke for a new one)")
            else:
                made = keys.create(
                    name=f"{args.tenant} portal",
                    role="tenant",
                    park=park,
                    tenant=args.tenant,
                    by=f"console:{getpass.getuser()}",
                )
                print(f"  API key ({made.key.id}): {made.secret}")
        else:
            removed = users.pop(user, None) is not None
            passwords.write(args.passwd, users)
            if acl is not None:
                passwords.replace_text(args.acl, acl)
            revoked = [k for k in keys.list(park=park) if k.tenant == args.tenant]
            for k in revoked:
                keys.revoke(k.id)
            print(
                f"tenant {park}/{args.tenant}: broker user"
                f" {'removed' if removed else 'was not provisioned'},"
                f" {len(revoked)} API key(s) revoked"
            )
        print("reload Mosquitto for the broker to read them: systemctl reload mosquitto")
        return EXIT_OK
    finally:
        db.close()


@contextlib.contextmanager
def _locked(passwd: Path) -> Iterator[None]:
    """An exclusive lock beside the password file, from its read to the last write."""
    import fcntl

    with open(passwd.with_name(f".{passwd.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
