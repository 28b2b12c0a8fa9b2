"""The ``parkflow`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from parkflow.errors import ParkflowError, RegistryError

if TYPE_CHECKING:
    from service.settings import ServiceSettings


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.app import serve
    from ingest.settings import IngestSettings
    from parkflow.logs import setup_logging

    overrides = {k: v for k, v in (("registry", args.registry),) if v is not None}
    settings = IngestSettings(**overrides)
    setup_logging(settings.log_format)
    try:
        return serve(settings)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2


def _cmd_registry_check(args: argparse.Namespace) -> int:
    from parkflow.registry import load_registry

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
    from ingest.mqtt.acl import DEFAULT_INGEST_USERS, mosquitto_acl
    from parkflow.registry import load_registry

    try:
        reg = load_registry(args.file)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        acl = mosquitto_acl(reg, ingest_users=args.ingest_user or DEFAULT_INGEST_USERS)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(acl)
    return 0


def _cmd_registry_partition(args: argparse.Namespace) -> int:
    from ingest.mqtt.partition import MAX_MEMBERS, describe
    from parkflow.registry import load_registry

    if not 1 <= args.ingestors <= MAX_MEMBERS:
        print(f"--ingestors takes 1 to {MAX_MEMBERS}", file=sys.stderr)
        return 2
    for line in describe(load_registry(args.file), args.ingestors):
        print(line)
    print(
        f"run ingestor k with PARKFLOW_PARTITION=k/{args.ingestors} and the same registry"
        " (deploy/systemd/parkflow-ingest@.service does)"
    )
    return 0


def _service_settings(args: argparse.Namespace) -> ServiceSettings:
    from service.settings import ServiceSettings

    overrides = {k: getattr(args, k) for k in ("registry", "state_path") if getattr(args, k, None)}
    return ServiceSettings(**overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    from parkflow.logs import setup_logging
    from service.app import serve

    settings = _service_settings(args)
    setup_logging("json")
    return serve(settings)


def _cmd_detect(args: argparse.Namespace) -> int:
    from parkflow.logs import setup_logging
    from service.app import detect_now

    setup_logging("text", level=30)
    run_id = detect_now(_service_settings(args))
    print(f"detection run {run_id} done; see `parkflow surpluses` and `parkflow opportunities`")
    return 0


def _cmd_rebuild(args: argparse.Namespace) -> int:
    import time

    from parkflow.store import store_from_settings
    from service.rollups import RollupWorker

    settings = _service_settings(args)
    store = store_from_settings(settings)
    try:
        end = int(time.time() * 1000) + 86_400_000
        stats = RollupWorker(store, settings.load_registry()).rebuild(
            end - int((args.days + 1) * 86_400_000), end
        )
    finally:
        store.close()
    print(
        f"rebuilt {stats.rows_written} day rows of {stats.meters} meters from"
        f" {stats.points} readings in {stats.seconds:.1f} s"
    )
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from parkflow.tables import opportunities_table, surpluses_table
    from service.results import State

    state = State(_service_settings(args).state_path)
    try:
        run = state.latest_run()
        if run is None:
            print("no detection run yet: run `parkflow detect` (or `parkflow serve`)")
            return 1
        if args.command == "surpluses":
            rows = state.surpluses(run.id, tenant=args.tenant)
            print(surpluses_table(rows, explain=args.explain))
        else:
            rows = state.opportunities(run.id, tenant=args.tenant)
            print(opportunities_table(rows, explain=args.explain))
        print(f"\nrun {run.id}, window {run.window_days} days, finished {_when(run.finished_ms)}")
        return 0
    finally:
        state.close()


def _when(ms: int | None) -> str:
    import datetime as dt

    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingest.importer import CsvMapping, count_rows, import_csv
    from ingest.settings import IngestSettings
    from ingest.validate import Limits, Validator
    from parkflow.errors import InputError, PayloadError
    from parkflow.store import store_from_settings
    from parkflow.topics import topic_for

    settings = IngestSettings(**({"registry": args.registry} if args.registry else {}))
    try:
        park, tenant, meter = args.meter.split("/")
    except ValueError:
        print("--meter takes PARK/TENANT/METER", file=sys.stderr)
        return 2
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
    limits = Limits(horizon_ms=int(args.horizon_days * 86_400_000))
    registry = settings.load_registry()
    try:
        Validator(registry).resolve(topic_for(park, tenant, meter))  # before a long count
        # Counted by the importer's own reader: rows, not lines, in the file's encoding.
        total = None if args.quiet else count_rows(args.file, mapping)
    except PayloadError as exc:
        print(f"{args.meter}: {exc.detail}", file=sys.stderr)
        return 2
    except (InputError, ValueError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    store = store_from_settings(settings)
    try:
        with tqdm(total=total, unit="row", disable=args.quiet) as bar:
            summary = import_csv(
                args.file,
                store,
                registry,
                park,
                tenant,
                meter,
                mapping,
                limits,
                progress=bar.update,
            )
    except PayloadError as exc:
        print(f"{args.meter}: {exc.detail}", file=sys.stderr)
        return 2
    except (InputError, ValueError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        store.close()
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
    return 0 if summary.stored or not summary.rows else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from parkflow.demo import run_demo

    return run_demo(days=args.days, workdir=args.dir)


def _cmd_simulate(args: argparse.Namespace) -> int:
    import time

    from parkflow.registry import SAMPLE_REGISTRY, load_registry
    from service.knowledge import load_knowledge
    from service.simulate.flows import STEP_MS, generate, plan_messages
    from service.simulate.scenario import build_scenario
    from service.simulate.truth import build_truth, to_json

    if args.days <= 0 or args.speed <= 0 or args.interval <= 0 or args.replay_hours < 0:
        print("--days, --speed and --interval must be positive", file=sys.stderr)
        return 2
    knowledge = load_knowledge()
    try:
        scenario = build_scenario(load_registry(SAMPLE_REGISTRY).model, args.seed, knowledge)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    end = time.time_ns() // 1_000_000 - int(args.replay_hours * 3_600_000)
    end -= end % STEP_MS
    start = end - int(args.days * 86_400_000)
    gen = generate(
        scenario.park,
        scenario.profiles,
        start,
        end,
        noise_seed=scenario.noise_seed,
        faults=scenario.faults,
    )
    plan = plan_messages(gen.series, scenario.faults, end_ms=end, seed=scenario.noise_seed)
    try:
        truth = build_truth(
            scenario, knowledge, end, faults=gen.faults + plan.faults, plan=plan, start_ms=start
        )
    except ValueError as exc:  # a design too close to a threshold in this window
        print(exc, file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    registry_path, truth_path = args.out / "registry.yaml", args.out / "truth.json"
    registry_path.write_text(scenario.registry_yaml(), encoding="utf-8")
    truth_path.write_text(to_json(truth), encoding="utf-8")
    print(
        f"scenario {scenario.name}: {len(scenario.park.tenants)} tenants,"
        f" {sum(len(t.meters) for t in scenario.park.tenants)} meters;"
        f" planted {len(truth.opportunities)} opportunities,"
        f" {len(truth.non_opportunities)} non-opportunities, {len(truth.faults)} faults"
    )
    print(f"wrote {registry_path} and {truth_path}")
    if scenario.seed is not None:
        print(f"ingestors must load this registry: PARKFLOW_REGISTRY={registry_path}")
    bad = ", ".join(f"{n} {r}" for r, n in sorted(plan.quarantined.items()))
    print(
        f"{args.days:g} days of history: {len(plan.messages)} messages, {plan.readings_sent}"
        f" readings, of which {plan.duplicates} duplicates and {bad or 'none'} to be"
        f" quarantined; {plan.unique_good} readings to store"
    )
    if args.no_publish:
        return 0
    from service.simulate.publish import Publisher, live

    try:
        with Publisher(
            args.mqtt_host, args.mqtt_port, username=args.mqtt_username, password=args.mqtt_password
        ) as publisher:
            report = publisher.send(plan.messages)
            print(f"backfill published: {report.line()}")
            if report.refused:
                return 1
            if args.live:
                import threading

                stop = threading.Event()
                print(
                    f"live: every {args.interval:g} s, simulated time x{args.speed:g}"
                    " (never ahead of the wall clock); Ctrl-C stops"
                )
                try:
                    live(
                        scenario,
                        publisher,
                        end,
                        gen.registers,
                        interval_s=args.interval,
                        speed=args.speed,
                        stop=stop,
                    )
                except KeyboardInterrupt:
                    stop.set()
                    print("stopped")
    except (ConnectionError, OSError, TimeoutError) as exc:
        print(f"MQTT {args.mqtt_host}:{args.mqtt_port}: {exc}", file=sys.stderr)
        return 1
    return 0


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
    a.add_argument(
        "--ingest-user",
        action="append",
        help="an ingestor's broker user (repeat for each; default parkflow-ingest-1 and -2)",
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
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
        sp.add_argument("--state-path", type=Path, help="service state file (PARKFLOW_STATE_PATH)")
        if name in ("surpluses", "opportunities"):
            sp.add_argument("--tenant", help="only what concerns this tenant")
            sp.add_argument("--explain", action="store_true", help="add the plain-language text")
        sp.set_defaults(func=func)

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
        "demo", help="the whole pipeline on embedded defaults: a simulated park, ingest, detection"
    )
    d.add_argument("--days", type=int, default=30, help="days of history the park publishes")
    d.add_argument(
        "--dir", type=Path, default=None, help="where to keep the data (default: a temp dir)"
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ParkflowError as exc:  # a bad registry or knowledge file: say what, not a traceback
        for line in getattr(exc, "problems", None) or [str(exc)]:
            print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
