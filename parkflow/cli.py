"""The ``parkflow`` command: one entry point, a subcommand per job.

Each command parses its arguments, calls the function that does the work (in ``ingest``,
``service`` or ``parkflow``; the API calls the same ones) and prints. One exit code per kind of
problem: 0 done, 1 done but nothing to show (no run yet, nothing stored), 2 bad input (a
registry, a knowledge file, a setting, a CSV file, the command line, a publish the broker
refused), 3 a store, database or broker unavailable or failing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parkflow.errors import ConfigError, InputError, ParkflowError, StoreError

EXIT_OK, EXIT_NOTHING, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3

if TYPE_CHECKING:
    from parkflow.settings import Settings
    from service.alerts.lifecycle import Alert
    from service.alerts.repository import AlertRepository
    from service.settings import ServiceSettings


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.app import serve
    from ingest.settings import IngestSettings
    from parkflow.logs import setup_logging

    overrides = {k: v for k, v in (("registry", args.registry),) if v is not None}
    settings = IngestSettings(**overrides)
    setup_logging(settings.log_format)
    return serve(settings)


def _cmd_registry_check(args: argparse.Namespace) -> int:
    from parkflow.registry import load_registry
    from parkflow.registry.vocabulary import unknown_uses
    from service.knowledge import load_knowledge

    reg = load_registry(args.file)  # problems: main() lists them, exit 2
    knowledge = load_knowledge(override=str(args.knowledge) if args.knowledge else None)
    for warning in unknown_uses(reg.model, knowledge.use_names()):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    parks = reg.model.parks
    tenants = sum(len(p.tenants) for p in parks)
    print(
        f"{args.file}: OK ({len(parks)} park(s), {tenants} tenant(s), {len(reg.meters())} meter(s))"
    )
    return EXIT_OK


def _cmd_registry_schema(args: argparse.Namespace) -> int:
    import json

    from parkflow.registry.reference import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _cmd_registry_docs(args: argparse.Namespace) -> int:
    from parkflow.registry.reference import reference
    from service.knowledge import load_knowledge

    sys.stdout.write(reference(load_knowledge().use_meanings()))
    return EXIT_OK


def _cmd_registry_acl(args: argparse.Namespace) -> int:
    from ingest.mqtt.acl import DEFAULT_INGEST_USERS, mosquitto_acl
    from parkflow.registry import load_registry

    reg = load_registry(args.file)
    if args.park:  # one park's broker grants its own tenants only
        reg = reg.only(args.park)
    try:
        acl = mosquitto_acl(reg, ingest_users=args.ingest_user or DEFAULT_INGEST_USERS)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    sys.stdout.write(acl)
    return EXIT_OK


def _cmd_registry_partition(args: argparse.Namespace) -> int:
    from ingest.mqtt.partition import MAX_MEMBERS, describe
    from parkflow.registry import load_registry

    if not 1 <= args.ingestors <= MAX_MEMBERS:
        raise InputError(f"--ingestors takes 1 to {MAX_MEMBERS}")
    for line in describe(load_registry(args.file), args.ingestors):
        print(line)
    print(
        f"run ingestor k with PARKFLOW_PARTITION=k/{args.ingestors} and the same registry"
        " (deploy/systemd/parkflow-ingest@.service does)"
    )
    return EXIT_OK


def _service_settings(args: argparse.Namespace) -> ServiceSettings:
    from service.settings import ServiceSettings

    overrides = {
        k: getattr(args, k) for k in ("registry", "database_url") if getattr(args, k, None)
    }
    return ServiceSettings(**overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    from parkflow.logs import setup_logging
    from service.app import serve

    settings = _service_settings(args)
    http = {k: getattr(args, k) for k in ("http_host", "http_port") if getattr(args, k) is not None}
    if http:
        settings = settings.model_copy(update=http)
    setup_logging("json")
    return serve(settings)


def _cmd_dispatch(args: argparse.Namespace) -> int:
    from parkflow.logs import setup_logging
    from service.app import dispatch

    settings = _service_settings(args)
    setup_logging("json")
    return dispatch(settings, once=args.once)


def _cmd_consent(args: argparse.Namespace) -> int:
    from parkflow.tables import rows_table
    from service.alerts.consents import ConsentRepository
    from service.app import open_database

    db = open_database(_service_settings(args))
    try:
        repo = ConsentRepository(db)
        if args.action == "give":
            park, _, tenant = args.tenant.partition("/")
            if not tenant:
                raise InputError(f"{args.tenant!r}: give the tenant as PARK/TENANT")
            repo.give(park, args.opportunity, tenant, args.by, args.note)
            print(f"consent of {args.tenant} to be introduced for {args.opportunity} recorded")
            return EXIT_OK
        if args.action == "withdraw":
            tenant = args.tenant.partition("/")[2]
            if not tenant:
                raise InputError(f"{args.tenant!r}: give the tenant as PARK/TENANT")
            repo.withdraw(args.opportunity, tenant, args.by)
            print(f"consent of {args.tenant} for {args.opportunity} withdrawn")
            return EXIT_OK
        rows = [
            {
                "opportunity": c.opportunity_id,
                "tenant": f"{c.park}/{c.tenant}",
                "given": _when(c.given_ms),
                "by": c.given_by,
                "withdrawn": _when(c.withdrawn_ms) if c.withdrawn_ms else "",
                "withdrawn_by": c.withdrawn_by or "",
            }
            for c in repo.of(args.opportunity)
        ]
        if args.json:
            _print_json(rows)
        else:
            print(rows_table(rows) if rows else "no consents recorded")
        return EXIT_OK
    finally:
        db.close()


def _cmd_endpoints(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from parkflow.tables import rows_table
    from service.alerts.dispatch import enable
    from service.app import open_database
    from service.state.tables import endpoints, outbox

    db = open_database(_service_settings(args))
    try:
        if args.action == "enable":
            if not enable(db, args.channel, args.endpoint):
                raise InputError(f"no {args.channel} endpoint {args.endpoint!r} has failed")
            print(f"{args.channel} endpoint {args.endpoint} enabled: its notifications go out")
            return EXIT_OK
        waiting = (
            sa.select(outbox.c.channel, outbox.c.endpoint, sa.func.count())
            .where(outbox.c.sent_ms.is_(None))
            .group_by(outbox.c.channel, outbox.c.endpoint)
        )
        with db.connect() as conn:
            pending = {(c, e): n for c, e, n in conn.execute(waiting)}
            states = {
                (r["channel"], r["endpoint"]): r
                for r in conn.execute(sa.select(endpoints)).mappings()
            }
        rows = []
        for key in sorted(set(pending) | set(states)):
            st = states.get(key)
            rows.append(
                {
                    "channel": key[0],
                    "endpoint": key[1],
                    "pending": pending.get(key, 0),
                    "state": "disabled"
                    if st and st["disabled_ms"]
                    else ("failing" if st and st["failing_since_ms"] else "ok"),
                    "since": _when(st["disabled_ms"] or st["failing_since_ms"]) if st else "-",
                    "last_error": (st["last_error"] or "") if st else "",
                }
            )
        if args.json:
            _print_json(rows)
        else:
            print(rows_table(rows) if rows else "no notifications and no endpoints yet")
        return EXIT_OK
    finally:
        db.close()


def _cmd_keys(args: argparse.Namespace) -> int:
    """API keys, made by an operator at the console: the key is printed once, to stdout."""
    import getpass

    from parkflow.tables import keys_table
    from service.api.context import pepper_of
    from service.auth import KeyRepository
    from service.state import Database, require_current

    settings = _service_settings(args)
    db = Database(args.url or settings.resolved_database_url())
    try:
        require_current(db)
        keys = KeyRepository(db, pepper_of(settings))
        if args.action == "create":
            if args.role == "tenant":
                registry = settings.load_registry()
                if not registry.has_tenant(args.park or "", args.tenant or ""):
                    raise InputError(f"no tenant {args.park}/{args.tenant} in the registry")
            by = f"console:{getpass.getuser()}"
            made = keys.create(
                name=args.name, role=args.role, park=args.park, tenant=args.tenant, by=by
            )
            print(f"key {made.key.id} ({made.key.role}): store it now, it is not shown again:")
            print(made.secret)
        elif args.action == "list":
            rows = keys.list(park=args.park, include_revoked=args.all)
            print(keys_table(rows))
            if not rows:
                return EXIT_NOTHING
        else:
            k = keys.revoke(args.key_id)
            print(f"key {k.id} ({k.name}) revoked")
        return EXIT_OK
    finally:
        db.close()


def _cmd_detect(args: argparse.Namespace) -> int:
    from parkflow.logs import setup_logging
    from service.app import detect_now

    setup_logging("text", level=30)
    run_id = detect_now(_service_settings(args))
    print(
        f"detection run {run_id} done; see `parkflow plan`, `parkflow opportunities` and"
        " `parkflow surpluses`"
    )
    return EXIT_OK


def _cmd_rebuild(args: argparse.Namespace) -> int:
    from service.app import rebuild_rollups

    stats = rebuild_rollups(_service_settings(args), args.days)
    print(
        f"rebuilt {stats.rows_written} day rows ({stats.rows_changed} changed) of"
        f" {stats.meters} meters from {stats.points} readings in {stats.seconds:.1f} s"
    )
    return EXIT_OK


def _cmd_results(args: argparse.Namespace) -> int:
    from parkflow.tables import (
        ALTERNATIVES_NOTE,
        opportunities_table,
        plan_table,
        plan_totals,
        surpluses_table,
        with_plan,
    )
    from service.app import open_database_if_any
    from service.results import ResultsDb

    db = open_database_if_any(_service_settings(args))
    if db is None:
        print(_NO_RUN)
        return EXIT_NOTHING
    state = ResultsDb(db)
    try:
        run = state.latest_run()
        if run is None:
            print(_NO_RUN)
            return EXIT_NOTHING
        if args.command == "surpluses":
            rows = state.surpluses(run.id, tenant=args.tenant)
            print(surpluses_table(rows, explain=args.explain))
        elif args.command == "opportunities":
            rows = with_plan(
                state.opportunities(run.id, tenant=args.tenant), state.plan_links(run.id)
            )
            print(f"{ALTERNATIVES_NOTE}\n")
            print(opportunities_table(rows, explain=args.explain))
            print(f"\n{plan_totals(state.plan(run.id))}")
        else:
            print(plan_totals(state.plan(run.id)) + "\n")
            print(plan_table(state.plan_links(run.id, tenant=args.tenant)))
        print(f"\nrun {run.id}, window {run.window_days} days, finished {_when(run.finished_ms)}")
        return EXIT_OK
    finally:
        db.close()


_NO_RUN = "no detection run yet: run `parkflow detect` (or `parkflow serve`)"


def _cmd_db(args: argparse.Namespace) -> int:
    from service.state import Database, current_revision, head_revision, upgrade

    db = Database(args.url or _service_settings(args).resolved_database_url())
    try:
        if args.action == "upgrade":
            before, after = upgrade(db)
            if before == after:
                print(f"database at {db.shown} is at revision {after}: nothing to do")
            else:
                print(f"database at {db.shown} upgraded from {before or 'empty'} to {after}")
            return EXIT_OK
        current, head = current_revision(db), head_revision()
        print(f"database at {db.shown}: revision {current or 'none'}, this release needs {head}")
        return EXIT_OK if current == head else EXIT_NOTHING
    finally:
        db.close()


def _alert_repository(args: argparse.Namespace, *, write: bool) -> AlertRepository | None:
    """Reads on a database never migrated find nothing (``None``); writes need it current."""
    from service.alerts.repository import AlertRepository
    from service.app import open_database, open_database_if_any

    settings = _service_settings(args)
    db = open_database(settings) if write else open_database_if_any(settings)
    return None if db is None else AlertRepository(db)


def _alert_dict(alert: Alert) -> dict[str, object]:
    import dataclasses

    from parkflow.tables import utc_text

    row = dataclasses.asdict(alert)
    for key in ("opened_ms", "acknowledged_ms", "resolved_ms"):
        row[key.removesuffix("_ms")] = utc_text(row[key]) if row[key] is not None else None
    return row


def _cmd_alerts(args: argparse.Namespace) -> int:
    from parkflow.tables import alert_history_table, alerts_table, silences_table, utc_text
    from service.alerts.lifecycle import Status

    write = args.action in ("ack", "resolve", "silence")
    repo = _alert_repository(args, write=write)
    if repo is None:
        what = "silences" if args.action == "silences" else "alerts"
        print(f"no {what} yet: the operational database was never migrated")
        return EXIT_NOTHING
    try:
        if args.action == "list":
            statuses = list(Status) if args.all else [Status.OPEN, Status.ACKNOWLEDGED]
            rows = [_alert_dict(a) for a in repo.alerts(statuses)]
            if args.json:
                _print_json(rows)
            else:
                print(alerts_table(rows))
                print(f"\n{len(rows)} alert(s), " + ("every state" if args.all else "firing"))
            return EXIT_OK if rows else EXIT_NOTHING
        if args.action == "show":
            alert = repo.find(args.id)
            history = repo.history(alert.id)
            if args.json:
                _print_json(
                    {
                        **_alert_dict(alert),
                        "history": [{**h, "at": utc_text(h["at_ms"])} for h in history],
                    }
                )
                return EXIT_OK
            row = _alert_dict(alert)
            for key in ("id", "kind", "subject", "park", "tenant", "severity", "status"):
                print(f"{key}: {row[key] if row[key] is not None else 'pending'}")
            for key in ("opened", "acknowledged", "resolved"):
                if row[key] is not None:
                    by = f" by {alert.acknowledged_by}" if key == "acknowledged" else ""
                    print(f"{key}: {row[key]}{by}")
            print(f"summary: {alert.summary}\n")
            print(alert_history_table(history))
            return EXIT_OK
        if args.action in ("ack", "resolve"):
            found = repo.find(args.id)
            act = repo.acknowledge if args.action == "ack" else repo.resolve
            done = act(found.id, args.by, args.reason)
            status = done.status.value if done.status else "pending"
            print(f"alert {done.id} ({done.kind} {done.subject}) is {status}")
            return EXIT_OK
        if args.action == "silence":
            sid = repo.silence(
                kind=args.kind,
                subject=args.subject,
                until_ms=args.until,
                by=args.by,
                reason=args.reason,
            )
            print(f"silence {sid} until {utc_text(args.until)}")
            return EXIT_OK
        silences = repo.silences(expired=args.all)
        if args.json:
            _print_json([{**r, "until": utc_text(r["until_ms"])} for r in silences])
        else:
            print(silences_table(silences))
        return EXIT_OK if silences else EXIT_NOTHING
    finally:
        repo.db.close()


def _exchange_repo(args: argparse.Namespace) -> tuple[Any, Any]:
    from service.exchanges.repository import ExchangeRepository
    from service.state import Database, require_current

    settings = _service_settings(args)
    db = Database(getattr(args, "url", None) or settings.resolved_database_url())
    try:
        require_current(db)
    except BaseException:
        db.close()
        raise
    return db, ExchangeRepository(db)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a date, e.g. 2026-09-16") from None


def _hours(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: local hours, e.g. 9,10,17,18,19") from None


def _cmd_exchanges(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from parkflow.tables import exchanges_table, savings_table
    from service.exchanges.model import Benefit, Factor, Item, Metering, Method, Price, Side
    from service.exchanges.pipeline import Barrier, Stage
    from service.exchanges.report import entry_row, savings_rows
    from service.exchanges.repository import Registration

    def decimal(text: str, what: str) -> Decimal:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise InputError(f"{what}: {text!r} is not a number") from None

    db, repo = _exchange_repo(args)
    try:
        if args.action == "add":
            projection, legal, opp_id = None, "unknown", args.opportunity
            if opp_id:
                from service.exchanges.intake import from_opportunity
                from service.results import ResultsDb

                state = ResultsDb(db)
                try:
                    projection, legal, _park = from_opportunity(state, opp_id)
                finally:
                    state.close()
            entry = repo.create(
                args.id,
                args.park,
                args.owner,
                args.by or args.owner,
                opportunity_id=opp_id,
                projection=projection,
                legal_status=args.legal_status or legal,
                barrier=Barrier(args.barrier) if args.barrier else None,
                notes=args.notes or "",
            )
            print(exchanges_table([entry_row(entry)]))
        elif args.action == "register":
            try:
                metering = Metering(
                    Method(args.method),
                    args.meter,
                    share=decimal(args.share, "--share") if args.share else None,
                    baseline_per_hour=args.baseline_per_hour,
                    check_meter=args.check_meter,
                    check_side=Side(args.check_side),
                    tolerance=args.tolerance,
                )
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            entry = repo.register(
                args.id,
                Registration(
                    args.supplier,
                    args.receiver,
                    args.resource,
                    args.unit,
                    Benefit(args.benefit),
                    args.from_meter,
                    args.to_meter,
                    metering,
                    args.start,
                    args.end,
                ),
            )
            print(exchanges_table([entry_row(entry)]))
        elif args.action == "price":
            price = Price(
                Item(args.item),
                args.effective,
                decimal(args.vnd_per_unit, "--vnd-per-unit"),
                Side(args.paid_by) if args.paid_by else None,
                args.hours or (),
                args.source or "",
            )
            repo.add_price(args.id, price, args.by)
            print(f"{args.id}: {price.item} {price.vnd_per_unit} VND/unit from {price.effective}")
        elif args.action == "factor":
            factor = Factor(args.year, decimal(args.t_per_unit, "--t-per-unit"), args.source or "")
            repo.add_factor(args.id, factor)
            print(f"{args.id}: {factor.t_per_unit} tCO2e/unit in {factor.year}")
        elif args.action == "move":
            entry = repo.move(args.id, Stage(args.stage), args.by, args.note or "")
            print(exchanges_table([entry_row(entry)]))
        elif args.action == "list":
            stages = [Stage(s) for s in args.stage] if args.stage else None
            entries = repo.entries(args.park, stages)
            if not entries:
                print("no exchanges: add one with `parkflow exchanges add`")
                return EXIT_NOTHING
            print(exchanges_table([entry_row(e) for e in entries]))
        else:  # show
            entry = repo.get(args.id)
            print(exchanges_table([entry_row(entry)]))
            p = entry.pipeline
            if p.notes:
                print(f"\nnotes: {p.notes}")
            if p.projection is not None:
                pr = p.projection
                held = "frozen baseline" if p.frozen else "projection (not yet agreed)"
                print(
                    f"\n{held}: {pr.quantity_per_day:,.3f}/day, park {pr.park_vnd_per_year:,}"
                    f" VND/yr (supplier {pr.supplier_vnd_per_year:,}, receiver"
                    f" {pr.receiver_vnd_per_year:,})"
                )
            print("\nmoves:")
            for m in repo.moves(args.id):
                came = m.from_stage or "(new)"
                note = f": {m.note}" if m.note else ""
                print(f"  {_when(m.at_ms)}  {came} -> {m.to_stage} by {m.by}{note}")
            if entry.registration is not None:
                ex = repo.exchange(args.id)
                print("\nprices:")
                for pc in ex.prices:
                    band = f" hours {','.join(map(str, pc.hours))}" if pc.hours else ""
                    who = f" paid by {pc.paid_by}" if pc.paid_by else ""
                    print(f"  {pc.effective} {pc.item} {pc.vnd_per_unit} VND/unit{band}{who}")
                for f in ex.factors:
                    print(f"  {f.year} emission factor {f.t_per_unit} tCO2e/unit")
                days = repo.savings(exchange_id=args.id)
                print("\n" + savings_table(savings_rows(days, {args.id: p.projection})))
        return EXIT_OK
    finally:
        db.close()


def _cmd_savings(args: argparse.Namespace) -> int:
    from parkflow.store import store_from_settings
    from parkflow.tables import savings_table
    from service.exchanges.report import savings_rows
    from service.exchanges.verify import refresh

    db, repo = _exchange_repo(args)
    try:
        today = dt.datetime.now(dt.UTC).date()
        start = args.since or today.replace(day=1)
        end = args.until or today + dt.timedelta(days=1)
        if end <= start:
            raise InputError("--until is after --since")
        if args.refresh:
            settings = _service_settings(args)
            registry = settings.load_registry()
            store = store_from_settings(settings)
            try:
                done = refresh(repo, store, store, registry, start, end, park=args.park)
            finally:
                store.close()
            print(f"recomputed {done.computed} exchange-days, {len(done.changed)} changed\n")
        days = repo.savings(exchange_id=args.exchange, park=args.park, start=start, end=end)
        if not days:
            print("no verified days in that period (run with --refresh to compute them)")
            return EXIT_NOTHING
        projections = {e.id: e.pipeline.projection for e in repo.entries(args.park)}
        rows = savings_rows(days, projections)
        if args.json:
            _print_json(rows)
        else:
            print(savings_table(rows))
        return EXIT_OK
    finally:
        db.close()


def _when(ms: int | None) -> str:
    import datetime as dt

    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _instant(text: str) -> int:
    """An ISO 8601 date or date-time as epoch ms; without an offset it is UTC."""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give an ISO date or time, e.g. 2026-03-01 or 2026-03-01T08:00+07:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _store_settings(args: argparse.Namespace) -> Settings:
    from parkflow.settings import Settings

    overrides = {k: getattr(args, k) for k in ("registry",) if getattr(args, k, None)}
    return Settings(**overrides)


def _print_json(rows: object) -> None:
    import json

    print(json.dumps(rows, indent=2, ensure_ascii=False))


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from parkflow.quarantine import QuarantineFilter, quarantine_rows
    from parkflow.store import store_from_settings
    from parkflow.tables import quarantine_table, utc_text

    if args.limit < 1 or args.excerpt_chars < 1:
        raise InputError("--limit and --excerpt-chars take a positive number")
    wanted = QuarantineFilter(
        since_ms=args.since,
        until_ms=args.until,
        park=args.park,
        tenant=args.tenant,
        meter=args.meter,
        reason=args.reason,
        limit=args.limit,
    )
    store = store_from_settings(_store_settings(args))
    try:
        rows = quarantine_rows(store, wanted, args.excerpt_chars)
    finally:
        store.close()
    if args.json:
        _print_json([{"received": utc_text(r.received_ms), **r.as_dict()} for r in rows])
    else:
        print(quarantine_table(rows))
        more = " (--limit reached: there may be more)" if len(rows) == args.limit else ""
        print(f"\n{len(rows)} record(s), most recent first{more}")
    return EXIT_OK if rows else EXIT_NOTHING


def _cmd_meters(args: argparse.Namespace) -> int:
    from parkflow.store import store_from_settings
    from parkflow.tables import meters_table, utc_text
    from parkflow.timeunits import hours_ms, now_ms
    from service.meters import meter_summaries

    until = now_ms() if args.until is None else args.until
    since = until - hours_ms(24) if args.since is None else args.since
    if since >= until:
        raise InputError("--since must be before --until")
    if args.stale_after_s is not None and args.stale_after_s <= 0:
        raise InputError("--stale-after-s takes a positive number of seconds")
    settings = _store_settings(args)
    meters = [
        m
        for m in settings.load_registry().meters()
        if args.park in (None, m.park.id)
        and args.tenant in (None, m.tenant.id)
        and args.meter in (None, m.meter.id)
    ]
    if not meters:
        raise InputError("no registered meter matches --park, --tenant and --meter")
    store = store_from_settings(settings)
    try:
        rows = meter_summaries(store, meters, since, until, args.stale_after_s)
    finally:
        store.close()
    if args.json:
        _print_json(
            {
                "since": utc_text(since),
                "until": utc_text(until),
                "meters": [{"last": utc_text(r.last_ms), **r.as_dict()} for r in rows],
            }
        )
    else:
        print(meters_table(rows))
        stale = sum(r.stale for r in rows)
        print(
            f"\n{len(rows)} meter(s), {stale} stale; readings and totals from"
            f" {utc_text(since)} to {utc_text(until)} (end excluded)."
            "\ntotal: cumulative = register increase (resets and rollovers counted as the"
            " rollups do), delta = sum of deltas, rate = integrated over time; intervals"
            " crossing an end count in proportion."
            "\nstale: the last reading is older than the meter's max_gap_s (registry, 1 h"
            " unless set) at the end" + (" (--stale-after-s given)" if args.stale_after_s else "")
        )
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingest.app import import_file, import_meter
    from ingest.csv_rows import CsvMapping, count_rows
    from ingest.settings import IngestSettings

    settings = IngestSettings(**({"registry": args.registry} if args.registry else {}))
    mapping = CsvMapping(
        ts_column=args.ts_column,
        value_column=args.value_column,
        unit=args.unit,
        timezone=args.timezone,
        ts_format=args.ts_format,
        delimiter=args.delimiter,
        decimal=args.decimal,
        dayfirst=args.dayfirst,
        encoding=args.encoding,
    )
    registry = settings.load_registry()
    ids = import_meter(registry, args.meter)  # before a long count
    # Counted by the importer's own reader: rows, not lines, in the file's encoding.
    total = None if args.quiet else count_rows(args.file, mapping)
    with tqdm(total=total, unit="row", disable=args.quiet) as bar:
        summary = import_file(
            settings, registry, args.file, ids, mapping, args.horizon_days, bar.update
        )
    print(
        f"{summary.rows} rows: {summary.stored} stored, {sum(summary.rejected.values())} rejected"
    )
    if summary.repeated:
        n = len(summary.repeated)
        shown = ", ".join(f"line {a} (same time as line {b})" for a, b in summary.repeated[:5])
        print(
            f"  {n} row{'s' if n > 1 else ''} repeated an earlier timestamp;"
            f" the later row's value is kept: {shown}{', ...' if n > 5 else ''}"
        )
    for reason, n in summary.rejected.most_common():
        print(f"  {reason}: {n}  e.g. {summary.examples[reason]}")
    return EXIT_OK if summary.stored or not summary.rows else EXIT_NOTHING


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.once:
        from parkflow.demo import run_demo

        return run_demo(days=args.days, workdir=args.dir)
    from parkflow.demo_live import DEFAULT_DIR, serve_demo

    if args.days < 2:
        raise InputError("--days: at least 2 (detection needs a day of history before today)")
    return serve_demo(
        days=args.days,
        workdir=args.dir or DEFAULT_DIR,
        host=args.host,
        port=args.port,
        live_interval_s=args.live_interval,
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from parkflow.registry import SAMPLE_REGISTRY, load_registry
    from parkflow.timeunits import hours_ms, now_ms
    from service.knowledge import load_knowledge
    from service.simulate.run import prepare, publish, write

    if args.days <= 0 or args.speed <= 0 or args.interval <= 0 or args.replay_hours < 0:
        print("--days, --speed and --interval must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT
    base = load_registry(SAMPLE_REGISTRY).model
    end = now_ms() - hours_ms(args.replay_hours)
    try:
        sim = prepare(base, args.seed, load_knowledge(), end, args.days)
    except ValueError as exc:  # no clear design for the seed, or in this window
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    registry_path, truth_path = write(sim, args.out)
    scenario, history = sim.summary()
    print(scenario)
    print(f"wrote {registry_path} and {truth_path}")
    if args.seed is not None:
        print(f"ingestors must load this registry: PARKFLOW_REGISTRY={registry_path}")
    print(history)
    if args.no_publish:
        return EXIT_OK
    try:
        report = publish(
            sim,
            host=args.mqtt_host,
            port=args.mqtt_port,
            username=args.mqtt_username,
            password=args.mqtt_password,
            live_interval_s=args.interval if args.live else None,
            speed=args.speed,
        )
    except (ConnectionError, OSError, TimeoutError) as exc:
        print(f"MQTT {args.mqtt_host}:{args.mqtt_port}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_BAD_INPUT if report.refused else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    # the exchanges' vocabulary, as the domain spells it (pure modules, light to import)
    from service.exchanges.model import Benefit, Item, Method, Side
    from service.exchanges.pipeline import Barrier, Stage

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
    c = reg.add_parser(
        "check",
        help="validate a registry file and print every problem, and warn about use names no"
        " substitution rule knows",
    )
    c.add_argument("file", type=Path)
    c.add_argument(
        "--knowledge",
        type=Path,
        help="a park's knowledge YAML overriding the shipped defaults, for its rules' use names",
    )
    c.set_defaults(func=_cmd_registry_check)
    reg.add_parser(
        "schema", help="print the registry's JSON Schema (editors validate the YAML with it)"
    ).set_defaults(func=_cmd_registry_schema)
    reg.add_parser(
        "docs", help="print the registry reference (docs/registry.md is this command's output)"
    ).set_defaults(func=_cmd_registry_docs)
    a = reg.add_parser(
        "acl", help="print a Mosquitto ACL file giving each tenant its own topics only"
    )
    a.add_argument("file", type=Path)
    a.add_argument(
        "--ingest-user",
        action="append",
        help="an ingestor's broker user (repeat for each; default parkflow-ingest-1 and -2)",
    )
    a.add_argument(
        "--park",
        action="append",
        help="only this park's tenants, for its own broker (repeat for a group of parks;"
        " default every park)",
    )
    a.set_defaults(func=_cmd_registry_acl)
    pa = reg.add_parser(
        "partition", help="which tenants each of N ingestors takes (PARKFLOW_PARTITION=k/N)"
    )
    pa.add_argument("file", type=Path)
    pa.add_argument("--ingestors", type=int, default=2)
    pa.set_defaults(func=_cmd_registry_partition)

    for name, helptext, func in (
        ("serve", "keep rollups current and run detection on a schedule", _cmd_serve),
        ("detect", "update rollups and run detection now", _cmd_detect),
        ("surpluses", "the latest run's surpluses, as a table", _cmd_results),
        ("opportunities", "the latest run's ranked opportunities, as a table", _cmd_results),
        (
            "plan",
            "the latest run's plan: the exchanges the park runs, and its totals",
            _cmd_results,
        ),
    ):
        sp = sub.add_parser(name, help=helptext)
        if name == "serve":
            sp.add_argument("--http-host", help="the API's address (PARKFLOW_HTTP_HOST, 127.0.0.1)")
            sp.add_argument(
                "--http-port", type=int, help="the API's port (PARKFLOW_HTTP_PORT, 8000)"
            )
        sp.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
        sp.add_argument("--database-url", help="operational database URL (PARKFLOW_DATABASE_URL)")
        if name in ("surpluses", "opportunities", "plan"):
            sp.add_argument("--tenant", help="only what concerns this tenant")
        if name in ("surpluses", "opportunities"):
            sp.add_argument("--explain", action="store_true", help="add the plain-language text")
        sp.set_defaults(func=func)

    q = sub.add_parser(
        "quarantine",
        help="what was quarantined and why, with an escaped excerpt of the raw payload"
        " (store: PARKFLOW_INFLUX_URL or PARKFLOW_SQLITE_PATH)",
    )
    _add_window(q, "received")
    q.add_argument("--park", help="only records attributed to this park")
    q.add_argument(
        "--tenant",
        help="only records attributed to this tenant's meters (a message naming no registered"
        " meter has no tenant: see it without --tenant, by its topic)",
    )
    q.add_argument("--meter", help="only records attributed to this meter id")
    q.add_argument("--reason", help="only this reason code, e.g. out_of_range")
    q.add_argument("--limit", type=int, default=100, help="at most this many records")
    q.add_argument(
        "--excerpt-chars", type=int, default=200, help="characters of payload shown (escaped)"
    )
    q.add_argument("--json", action="store_true", help="JSON instead of a table")
    q.set_defaults(func=_cmd_quarantine)

    me = sub.add_parser(
        "meters",
        help="per registered meter: last reading, readings and total over a period, stale or not",
    )
    me.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    _add_window(me, "readings", default=" (default: 24 hours before --until)")
    me.add_argument("--park", help="only this park's meters")
    me.add_argument("--tenant", help="only this tenant's meters")
    me.add_argument("--meter", help="only meters with this id")
    me.add_argument(
        "--stale-after-s",
        type=float,
        help="stale when the last reading is older than this at --until"
        " (default: each meter's max_gap_s, 1 h unless the registry says otherwise)",
    )
    me.add_argument("--json", action="store_true", help="JSON instead of a table")
    me.set_defaults(func=_cmd_meters)

    dbp = sub.add_parser(
        "db",
        help="the operational database (detection results, alerts, outbox): PARKFLOW_DATABASE_URL",
    ).add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("upgrade", "apply the migrations this release ships"),
        (
            "current",
            "show the database's revision and the one this release needs (exit 1 if behind)",
        ),
    ):
        dp = dbp.add_parser(action, help=helptext)
        dp.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")
        dp.set_defaults(func=_cmd_db)

    dsp = sub.add_parser(
        "dispatch",
        help="deliver alert notifications from the outbox (webhooks, e-mail, MQTT) until stopped",
    )
    dsp.add_argument("--once", action="store_true", help="one pass, then exit")
    dsp.set_defaults(func=_cmd_dispatch)

    cons = sub.add_parser(
        "consent", help="parties' consent to be introduced, per opportunity"
    ).add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("give", "record a tenant's consent to be introduced for an opportunity"),
        ("withdraw", "withdraw it: alerts are anonymous again"),
        ("list", "the consents recorded"),
    ):
        cp = cons.add_parser(action, help=helptext)
        if action == "list":
            cp.add_argument("--opportunity", help="only this opportunity")
            cp.add_argument("--json", action="store_true", help="JSON instead of a table")
        else:
            cp.add_argument("opportunity", help="the opportunity id (parkflow opportunities)")
            cp.add_argument("tenant", help="PARK/TENANT: the party consenting")
            cp.add_argument("--by", required=True, help="who records it (an operator)")
            if action == "give":
                cp.add_argument("--note", help="how the consent was given (a letter, a meeting)")
            cp.set_defaults(func=_cmd_consent)

    enp = sub.add_parser(
        "endpoints", help="alert endpoints: pending notifications, failing, disabled"
    ).add_subparsers(dest="action", required=True)
    ep = enp.add_parser("list", help="every endpoint with notifications or a delivery state")
    ep.add_argument("--json", action="store_true", help="JSON instead of a table")
    ep.set_defaults(func=_cmd_endpoints)
    ee = enp.add_parser("enable", help="enable a disabled endpoint again")
    ee.add_argument("channel", choices=["webhook", "email", "mqtt"])
    ee.add_argument("endpoint", help="its URL, address or topic, as `endpoints list` shows it")
    ee.set_defaults(func=_cmd_endpoints)
    _add_alerts(sub)

    from parkflow import api_cli, tenants_cli

    tenants_cli.add_parser(sub)
    api_cli.add_parser(sub)

    kp = sub.add_parser("keys", help="API keys: create, list, revoke").add_subparsers(
        dest="action", required=True
    )
    kc = kp.add_parser("create", help="make a key (printed once)")
    kc.add_argument("--name", required=True, help="who or what uses it")
    kc.add_argument("--role", choices=["operator", "tenant"], required=True)
    kc.add_argument("--park", help="the park (a tenant key's; an operator key's: that park only)")
    kc.add_argument("--tenant", help="the tenant of a tenant key")
    kc.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    kl = kp.add_parser("list", help="the keys (never the keys themselves)")
    kl.add_argument("--park", help="only this park's keys")
    kl.add_argument("--all", action="store_true", help="revoked ones too")
    kr = kp.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    for kx in (kc, kl, kr):
        kx.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")
        kx.set_defaults(func=_cmd_keys)

    ex = sub.add_parser(
        "exchanges", help="exchanges from idea to verified savings (the operational database)"
    ).add_subparsers(dest="action", required=True)

    def _db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")

    ea = ex.add_parser("add", help="a new exchange, identified (from detection or a workshop)")
    ea.add_argument("id")
    ea.add_argument("--park", required=True)
    ea.add_argument("--owner", required=True, help="who follows it up")
    ea.add_argument("--by", help="who enters it (default: the owner)")
    ea.add_argument("--opportunity", help="an opportunity id of the latest detection run")
    ea.add_argument("--barrier", choices=[b.value for b in Barrier])
    ea.add_argument("--legal-status", help="the legal screen's status (default: the opportunity's)")
    ea.add_argument("--notes")
    er = ex.add_parser("register", help="its parties, resource, metering and dates")
    er.add_argument("id")
    for name in ("supplier", "receiver", "resource", "unit", "from-meter", "to-meter", "meter"):
        er.add_argument(f"--{name}", required=True)
    er.add_argument("--benefit", required=True, choices=[b.value for b in Benefit])
    er.add_argument(
        "--method",
        required=True,
        choices=[m.value for m in Method],
        help="its own transfer meter, a share of the supplier's out-meter, or the receiver's"
        " in-meter below a baseline",
    )
    er.add_argument("--share", help="supplier_share: the share of --meter, (0, 1]")
    er.add_argument("--baseline-per-hour", type=float, help="receiver_reduction: the baseline")
    er.add_argument("--check-meter", help="the other side's meter, to reconcile with")
    er.add_argument("--check-side", choices=[x.value for x in Side], default="receiver")
    er.add_argument("--tolerance", type=float, default=0.05, help="disagreement above (0.05)")
    er.add_argument("--start", type=_day, required=True)
    er.add_argument("--end", type=_day)
    ep = ex.add_parser("price", help="a dated price (applies from its date on, never backwards)")
    ep.add_argument("id")
    ep.add_argument(
        "--item",
        required=True,
        choices=[x.value for x in Item],
    )
    ep.add_argument("--effective", type=_day, required=True)
    ep.add_argument("--vnd-per-unit", required=True)
    ep.add_argument("--paid-by", choices=[x.value for x in Side], help="for costs")
    ep.add_argument("--hours", type=_hours, help="a time-of-use band: local hours, e.g. 17,18,19")
    ep.add_argument("--source")
    ep.add_argument("--by", required=True)
    ef = ex.add_parser("factor", help="CO2e avoided per unit in one year")
    ef.add_argument("id")
    ef.add_argument("--year", type=int, required=True)
    ef.add_argument("--t-per-unit", required=True)
    ef.add_argument("--source")
    em = ex.add_parser("move", help="move an exchange to another stage (recorded: who, when)")
    em.add_argument("id")
    em.add_argument(
        "stage",
        choices=[s.value for s in Stage],
    )
    em.add_argument("--by", required=True)
    em.add_argument("--note", help="why (required to reject or end)")
    el = ex.add_parser("list", help="the pipeline")
    el.add_argument("--park")
    el.add_argument("--stage", action="append", help="only these stages (repeatable)")
    es = ex.add_parser("show", help="one exchange: moves, prices, savings by month")
    es.add_argument("id")
    for p_ in (ea, er, ep, ef, em, el, es):
        _db_args(p_)
        p_.set_defaults(func=_cmd_exchanges)

    sv = sub.add_parser(
        "savings", help="realised savings per exchange and month, the park's, the total"
    )
    sv.add_argument("--park")
    sv.add_argument("--exchange")
    sv.add_argument("--since", type=_day, help="first day (default: the 1st of this month)")
    sv.add_argument("--until", type=_day, help="day after the last (default: tomorrow)")
    sv.add_argument(
        "--refresh", action="store_true", help="recompute the days from the stored readings first"
    )
    sv.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    sv.add_argument("--json", action="store_true", help="JSON instead of a table")
    _db_args(sv)
    sv.set_defaults(func=_cmd_savings)
    from parkflow import report_cli

    report_cli.add_parser(sub)

    rb = sub.add_parser(
        "rebuild-rollups",
        help="recompute the rollups of the last days from the readings (after a registry change)",
    )
    rb.add_argument("--days", type=float, default=90.0)
    rb.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    rb.set_defaults(func=_cmd_rebuild)

    im = sub.add_parser("import", help="backfill one meter's history from a CSV file")
    im.add_argument("file", type=Path)
    im.add_argument("--meter", required=True, help="PARK/TENANT/METER as in the registry")
    im.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    im.add_argument("--ts-column", default="ts")
    im.add_argument("--value-column", default="value")
    im.add_argument("--unit", help="unit of the values (default: the meter's registered unit)")
    im.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="for times without an offset")
    im.add_argument("--ts-format", help="strptime format of the time column (default: inferred)")
    im.add_argument("--delimiter", default=",", help="one character; '\\t' or tab for a tab")
    im.add_argument("--decimal", default=".", help="decimal mark of the values, e.g. ','")
    im.add_argument(
        "--day-first",
        dest="dayfirst",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read 01/02/2026 as 1 February, day first, as Vietnamese exports write dates"
        " (the default); --no-day-first reads it as 2 January. Dates that start with the"
        " year (2026-02-01) are year-month-day either way",
    )
    im.add_argument(
        "--encoding",
        help="text encoding of the file, e.g. latin-1 or cp1258 (default: UTF-16 or UTF-8 as"
        " a byte order mark says, else UTF-8)",
    )
    im.add_argument("--horizon-days", type=float, default=3650.0, help="oldest row accepted")
    im.add_argument("--quiet", action="store_true", help="no progress bar")
    im.set_defaults(func=_cmd_import)

    d = sub.add_parser(
        "demo",
        help="the whole product on embedded defaults: a simulated park publishing live, ingest,"
        " detection, the plan, alerts, savings, and the API and pages served",
    )
    d.add_argument("--days", type=int, default=30, help="days of history the park publishes")
    d.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to keep the data (default: ./parkflow-demo, resumed when run again;"
        " with --once a temp dir)",
    )
    d.add_argument(
        "--once",
        action="store_true",
        help="publish the history, detect once, print the report and exit (serves nothing)",
    )
    d.add_argument("--host", default="127.0.0.1", help="the address the pages are served on")
    d.add_argument("--port", type=int, default=8000, help="the port (0: any free one)")
    d.add_argument(
        "--live-interval", type=float, default=60.0, help="seconds between live publications"
    )
    d.set_defaults(func=_cmd_demo)

    sim = sub.add_parser(
        "simulate",
        help="a fictional park publishing metered flows over MQTT, with planted opportunities,"
        " non-opportunities and faults, and its ground truth",
    )
    sim.add_argument(
        "--seed", type=int, default=None, help="random scenario (default: the sample park)"
    )
    sim.add_argument("--days", type=float, default=60.0, help="days of history to backfill")
    sim.add_argument("--live", action="store_true", help="keep publishing after the backfill")
    sim.add_argument("--interval", type=float, default=60.0, help="live: seconds between readings")
    sim.add_argument(
        "--speed", type=float, default=1.0, help="live: simulated seconds per wall second"
    )
    sim.add_argument(
        "--replay-hours",
        type=float,
        default=0.0,
        help="end the backfill this many hours ago, for --live --speed to replay",
    )
    sim.add_argument("--mqtt-host", default="127.0.0.1")
    sim.add_argument("--mqtt-port", type=int, default=1883)
    sim.add_argument("--mqtt-username", default=None)
    sim.add_argument("--mqtt-password", default=None)
    sim.add_argument(
        "--out", type=Path, default=Path("simulation"), help="where registry.yaml and truth.json go"
    )
    sim.add_argument(
        "--no-publish", action="store_true", help="only write registry.yaml and truth.json"
    )
    sim.set_defaults(func=_cmd_simulate)
    return parser


def _add_alerts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    al = sub.add_parser(
        "alerts",
        help="alerts in the operational database: list, show, acknowledge, resolve, silence",
    ).add_subparsers(dest="action", required=True)

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        p = al.add_parser(name, help=helptext)
        p.add_argument("--database-url", help="operational database URL (PARKFLOW_DATABASE_URL)")
        p.set_defaults(func=_cmd_alerts)
        return p

    def who(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--by", required=True, help=f"who {what} (kept in the history)")
        p.add_argument("--reason", required=True, help="why (kept in the history)")

    ls = command("list", "the firing alerts (open or acknowledged), the earliest opened first")
    ls.add_argument("--all", action="store_true", help="resolved ones too")
    ls.add_argument("--json", action="store_true", help="JSON instead of a table")
    show = command("show", "one alert and its history (who, when, why)")
    show.add_argument("id", help="the alert's id, or the start of it as `alerts list` shows")
    show.add_argument("--json", action="store_true", help="JSON instead of text")
    ack = command("ack", "acknowledge an open alert: no more reminders until it resolves")
    ack.add_argument("id", help="the alert's id, or the start of it")
    who(ack, "takes it in hand")
    res = command(
        "resolve",
        "resolve a firing alert by hand (recipients are told; it re-opens if the condition"
        " holds again for as long as it took to open)",
    )
    res.add_argument("id", help="the alert's id, or the start of it")
    who(res, "resolves it")
    si = command(
        "silence", "notify nobody of a kind, a subject or both until a time (alerts still change)"
    )
    si.add_argument("--kind", help="an alert kind, e.g. meter_stale (docs/alerts.md)")
    si.add_argument("--subject", help="a subject, e.g. PARK/TENANT/METER")
    si.add_argument(
        "--until",
        type=_instant,
        required=True,
        help="ISO date or time the silence ends (UTC unless it has an offset)",
    )
    who(si, "silences")
    sl = command("silences", "the silences in force, the latest ending first")
    sl.add_argument("--all", action="store_true", help="expired ones too")
    sl.add_argument("--json", action="store_true", help="JSON instead of a table")


def _add_window(p: argparse.ArgumentParser, what: str, default: str = "") -> None:
    p.add_argument(
        "--since",
        type=_instant,
        help=f"{what} at or after this ISO date or time (UTC unless it has an offset){default}",
    )
    p.add_argument(
        "--until", type=_instant, help=f"{what} before this ISO date or time (default: now)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a bad command line exits 2 (argparse)
    try:
        return int(args.func(args))
    except ConfigError as exc:  # say what and where, not a traceback
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except BrokenPipeError:  # `parkflow quarantine | head`: the reader has what it wanted
        _quiet_stdout()
        return EXIT_OK
    except (InputError, ParkflowError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
