"""``parkflow report``: the park's report for a month or a year, written as CSV, a printable
HTML page and (with Chromium) a PDF. Parses, calls ``service/report``, writes, prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="the park's report for a month or a year: exchanges by stage, realised savings,"
        " participation, against the EIP criteria (CSV, HTML, PDF; en or vi)",
    )
    p.add_argument("--park", help="park id (default: the registry's only park)")
    p.add_argument("--period", required=True, help="a month (2026-10) or a year (2026)")
    p.add_argument("--lang", choices=["en", "vi"], default="en", help="the HTML and PDF language")
    p.add_argument("--out", type=Path, required=True, help="directory to write the files into")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="recompute the period's days from the stored readings first (as savings --refresh)",
    )
    p.add_argument("--criteria", type=Path, help="a criteria YAML instead of the shipped one")
    p.add_argument("--chromium", help="the Chromium binary (default: chromium on the PATH)")
    p.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    p.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parkflow import cli
    from parkflow.errors import InputError
    from parkflow.store import store_from_settings
    from service.exchanges.verify import refresh
    from service.report.build import build_report
    from service.report.criteria import load_criteria
    from service.report.pdf import find_chromium, print_pdf
    from service.report.period import parse_period
    from service.report.render import to_csv, to_html

    period = parse_period(args.period)
    criteria = load_criteria(args.criteria)
    settings = cli._service_settings(args)
    registry = settings.load_registry()
    park_id = args.park
    if park_id is None:
        if len(registry.parks) != 1:
            raise InputError(f"name the park with --park: one of {', '.join(registry.parks)}")
        park_id = next(iter(registry.parks))
    park = registry.parks.get(park_id)
    if park is None:
        raise InputError(f"no park {park_id!r} in the registry")
    db, repo = cli._exchange_repo(args)
    try:
        if args.refresh:
            store = store_from_settings(settings)
            try:
                done = refresh(repo, store, store, registry, period.start, period.end, park=park_id)
            finally:
                store.close()
            print(f"recomputed {done.computed} exchange-days, {len(done.changed)} changed")
        report = build_report(repo, park, period, criteria)
    finally:
        db.close()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path, pdf_path = (out / f"report.{x}" for x in ("csv", "html", "pdf"))
    csv_path.write_text(to_csv(report), encoding="utf-8")
    html_path.write_text(to_html(report, criteria, args.lang), encoding="utf-8")
    print(f"wrote {csv_path}")
    print(f"wrote {html_path}")
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(
            "report.pdf NOT made: no Chromium found (install Debian's chromium package, or"
            " give --chromium); print report.html from a browser instead",
            file=sys.stderr,
        )
        return cli.EXIT_OK
    why = print_pdf(html_path, pdf_path, chromium)
    if why is not None:
        print(f"report.pdf NOT made: {why}", file=sys.stderr)
        return cli.EXIT_OK
    print(f"wrote {pdf_path}")
    return cli.EXIT_OK
