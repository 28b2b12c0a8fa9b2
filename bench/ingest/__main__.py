"""``python -m bench.ingest``: the command line, the servers, the phase loop, the last-line JSON."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

import bench.ingest
from bench.ingest.children import Children, log
from bench.ingest.context import Bench, Config
from bench.ingest.cpu import wait_quiet
from bench.ingest.phases import DEFAULT_PHASES, PHASES, Plan, Runs, settle
from bench.ingest.readings import round_n
from bench.ingest.report import median_run, summarize
from ingest.settings import IngestSettings
from tests.support.influx import InfluxServer
from tests.support.mosquitto import MosquittoServer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=(bench.ingest.__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="small N: whole run under a minute")
    ap.add_argument("--single", type=int, help="readings in the single phases (default 100000)")
    ap.add_argument("--batch", type=int, help="readings in the batch phase (default 500000)")
    ap.add_argument("--raw", type=int, help="points for the InfluxDB ceiling (default --batch)")
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument(
        "--ingestors",
        type=int,
        default=1,
        help="ingestor processes, each taking its share of the tenants",
    )
    ap.add_argument("--window", type=int, default=2000, help="unacked publishes per publisher")
    ap.add_argument("--poll-interval", type=float, default=0.05, help="seconds between polls")
    ap.add_argument("--timeout", type=float, default=120.0, help="stall timeout per phase (s)")
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, help="use this broker instead of starting one")
    ap.add_argument("--influx-url", help="use this InfluxDB instead of starting one")
    ap.add_argument(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (drain: optional, "
        "capacity without publishers running: messages queued first, then consumed)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all phases; figures are each phase's median round (noisy machines)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each phase wait up to S seconds for a quiet second (shared machines)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    ap.add_argument(
        "--profile",
        type=Path,
        help="py-spy the (first) ingestor of every parkflow phase into this directory",
    )
    ap.add_argument(
        "--profile-mode",
        choices=("wall", "gil"),
        default="wall",
        help="py-spy: every thread with waits (wall) or only the GIL holder (gil)",
    )
    ap.add_argument(
        "--paced-rate",
        type=float,
        help="msgs/s of the paced phase (default: half the single phase's readings/s)",
    )
    ap.add_argument("--paced-seconds", type=float, help="length of the paced phase (10, quick 5)")
    return ap.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    batch_n = args.batch or (50_000 if args.quick else 500_000)
    return Plan(
        single_n=round_n(args.single or (10_000 if args.quick else 100_000), args.publishers),
        batch_n=round_n(batch_n, args.publishers),
        raw_n=args.raw or batch_n,
        publishers=args.publishers,
        quick=args.quick,
        paced_rate=args.paced_rate,
        paced_seconds=args.paced_seconds,
    )


def ingestor_settings() -> dict[str, Any]:
    """The tunables the ingestors run with (defaults, or PARKFLOW_* of this environment)."""
    settings = IngestSettings()
    return {
        "batch_size": settings.batch_size,
        "flush_interval_s": settings.flush_interval_s,
        "receive_maximum": settings.receive_maximum,
        "max_pending_messages": settings.max_pending_messages,
    }


def run_phases(bench: Bench, plan: Plan, phases: list[str], args: argparse.Namespace) -> Runs:
    """Every chosen phase, in registry order, ``--repeat`` rounds."""
    runs: Runs = {}
    for r in range(args.repeat):
        if args.repeat > 1:
            log(f"round {r + 1}/{args.repeat}")
        for name, phase in PHASES.items():
            if name not in phases:
                continue
            if args.wait_quiet:
                waited = wait_quiet(args.wait_quiet)
                if waited > 1.5:
                    log(f"  (waited {waited:.0f}s for the machine to be quiet)")
            runs.setdefault(name, []).append(phase.run(bench, plan, runs))
            settle()
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_of(args)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starts background jobs with it ignored, and Ctrl-C must clean up.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = time.monotonic()
    children = Children()
    workdir = Path(tempfile.mkdtemp(prefix="parkflow-bench-"))
    mosquitto: MosquittoServer | None = None
    influxd: InfluxServer | None = None
    bench: Bench | None = None
    result: dict[str, Any] = {}
    try:
        if args.mqtt_port is None:
            mosquitto = MosquittoServer(workdir / "mosquitto").start()
            port = mosquitto.port
            log(f"mosquitto on 127.0.0.1:{port}")
        else:
            port = args.mqtt_port
        if args.influx_url is None:
            influxd = InfluxServer()
            influxd.start()
            influx_url = influxd.url
            log(f"influxd on {influx_url}")
        else:
            influx_url = args.influx_url
        server_pids = {
            name: pid
            for name, pid in (
                ("mosquitto", mosquitto.pid if mosquitto else None),
                ("influxd", influxd.pid if influxd else None),
            )
            if pid is not None
        }
        cfg = Config(
            host=args.mqtt_host if args.mqtt_port is not None else "127.0.0.1",
            port=port,
            influx_url=influx_url,
            publishers=args.publishers,
            window=args.window,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            keep=args.keep,
            workdir=workdir,
            profile=args.profile,
            ingestors=args.ingestors,
            profile_mode=args.profile_mode,
            server_pids=server_pids,
        )
        bench = Bench(cfg, children)
        result = {
            "quick": args.quick,
            "cores": os.cpu_count(),
            "publishers": args.publishers,
            "ingestors": args.ingestors,
            "ingestor_settings": ingestor_settings(),
        }
        runs = run_phases(bench, plan, phases, args)
        details = {name: median_run(rounds, PHASES[name].rate_key) for name, rounds in runs.items()}
        result = {**summarize(details, runs), **result, "details": details}
        result["seconds_total"] = round(time.monotonic() - started, 1)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        result = {"error": "interrupted"}
    except Exception as exc:
        traceback.print_exc()
        log("failed: stopping everything")
        result = {"error": repr(exc)[:2000]}
    finally:
        children.stop_all()
        if bench is not None:
            bench.cleanup(purge_sessions=mosquitto is None)  # our own broker is deleted anyway
        if mosquitto is not None:
            mosquitto.close()
        if influxd is not None:
            influxd.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
