"""The ``parkflow`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ingest.errors import RegistryError


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.app import serve
    from ingest.logs import setup_logging
    from ingest.settings import IngestSettings

    overrides = {k: v for k, v in (("registry", args.registry),) if v is not None}
    settings = IngestSettings(**overrides)
    setup_logging(settings.log_format)
    try:
        return serve(settings)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2


def _cmd_registry_check(args: argparse.Namespace) -> int:
    from ingest.registry import load_registry

    try:
        reg = load_registry(args.file)
    except RegistryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    parks = reg.model.parks
    tenants = sum(len(p.tenants) for p in parks)
    print(
        f"{args.file}: OK ({len(parks)} park(s), {tenants} tenant(s), {len(reg.meters())} meter(s))"
    )
    return 0


def _cmd_registry_acl(args: argparse.Namespace) -> int:
    from ingest.acl import mosquitto_acl
    from ingest.registry import load_registry

    try:
        reg = load_registry(args.file)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(mosquitto_acl(reg, ingest_user=args.ingest_user))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from service.demo import run_demo

    return run_demo(minutes=args.minutes, db=args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parkflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ingest", help="run an ingestor: MQTT -> validate -> store (settings: PARKFLOW_*)"
    )
    p.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    p.set_defaults(func=_cmd_ingest)

    reg = sub.add_parser("registry", help="park registry tools").add_subparsers(
        dest="action", required=True
    )
    c = reg.add_parser("check", help="validate a registry file and print every problem")
    c.add_argument("file", type=Path)
    c.set_defaults(func=_cmd_registry_check)
    a = reg.add_parser(
        "acl", help="print a Mosquitto ACL file giving each tenant its own topics only"
    )
    a.add_argument("file", type=Path)
    a.add_argument("--ingest-user", default="parkflow-ingest")
    a.set_defaults(func=_cmd_registry_acl)

    d = sub.add_parser(
        "demo", help="embedded broker + sample park publisher + ingestor into SQLite"
    )
    d.add_argument("--minutes", type=int, default=180, help="simulated minutes of readings to send")
    d.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temporary one)")
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
