"""The phases, by name (``PHASES``, in the order they run): each measures one thing alone and
returns its figures; the package docstring says what and how."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.ingest.children import log
from bench.ingest.context import Bench
from bench.ingest.cpu import CpuMeter, cpu_report
from bench.ingest.latency import Visibility, percentile
from bench.ingest.publishers import Publishers
from bench.ingest.readings import BATCH_MESSAGE, PARK, RAW_BODY_POINTS, round_n
from bench.ingest.report import median_run, ms, rate
from bench.ingest.subscriber import BareSubscriber
from parkflow.model import Direction, Reading
from parkflow.store.influx.lineprotocol import reading_line


@dataclass(frozen=True)
class Plan:
    """The sizes of a run, from the command line."""

    single_n: int
    batch_n: int
    raw_n: int
    publishers: int
    quick: bool
    paced_rate: float | None
    paced_seconds: float | None


Runs = dict[str, list[dict[str, Any]]]  # every round's figures so far, by phase


@dataclass(frozen=True)
class Phase:
    run: Callable[[Bench, Plan, Runs], dict[str, Any]]
    rate_key: str  # the rate a phase's median round is chosen by


def settle(seconds: float = 1.0) -> None:
    """Let InfluxDB and the broker finish what the previous phase left them (e.g. snapshots)."""
    time.sleep(seconds)


# (b) ------------------------------------------------------------------------------------------


def influx_raw(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    n = plan.raw_n
    log(f"(b) InfluxDB raw write ceiling, {n} points")
    db = bench.database("raw")
    bench.influx.query(f'CREATE DATABASE "{db}"', post=True)
    layout = bench.layout(n, BATCH_MESSAGE)
    lines = []
    for k in range(n):
        m = layout.meter_of(k)
        reading = Reading(
            PARK,
            m.tenant,
            m.meter,
            m.resource,
            Direction(m.direction),
            layout.t0 + k,
            layout.value(k) * m.to_canonical,
            k,
        )
        lines.append(reading_line(reading).encode())
    bodies = [b"\n".join(lines[i : i + RAW_BODY_POINTS]) for i in range(0, n, RAW_BODY_POINTS)]
    del lines
    cpu = CpuMeter(bench.cfg.server_pids)
    cpu.start()
    started = time.monotonic()
    for body in bodies:
        bench.influx.write(db, body)
    seconds = time.monotonic() - started
    used = cpu.stop()
    stored = bench.influx.count(db)
    out = {
        "n": n,
        "points_per_s": rate(n, seconds),
        "seconds": round(seconds, 3),
        "requests": len(bodies),
        "stored": stored,
        **cpu_report(used, seconds, n, "influxd"),
    }
    log(f"  influx raw: {n} points in {seconds:.2f}s = {out['points_per_s']:.0f} points/s")
    return out


# (a) ------------------------------------------------------------------------------------------


def _bare_with_publishers(
    bench: Bench, n: int, phase: str, *, drain: bool
) -> tuple[BareSubscriber, Publishers]:
    """The bare subscriber and the publishers of N single-reading messages, all ready."""
    cfg = bench.cfg
    client_id = bench.session(bench.tag(phase))
    sub = BareSubscriber(bench.children, cfg.host, cfg.port, client_id, n, cfg.timeout, drain=drain)
    pubs = bench.publishers(bench.layout(n, 1))
    sub.wait_ready()
    pubs.wait_ready()
    return sub, pubs


def ceiling(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    n = plan.single_n
    log(f"(a) bare subscriber ceiling, {n} single-reading messages")
    cfg = bench.cfg
    sub, pubs = _bare_with_publishers(bench, n, "bare", drain=False)
    cpu = CpuMeter(cfg.server_pids)
    cpu.start()
    pubs.start()
    run = pubs.results(cfg.timeout + 60)
    state = sub.result()
    used = {**cpu.stop(), "publishers": run.cpu, "subscriber": state["cpu"]}
    sub.join()
    seconds = state["last"] - state["first"]
    out = {
        "n": n,
        "received": state["count"],
        "msgs_per_s": rate(state["count"], seconds),
        "seconds_first_to_last_received": round(seconds, 3),
        "msgs_per_s_from_first_publish": rate(state["count"], state["last"] - run.first_publish),
        "publish_msgs_per_s": rate(run.messages, run.last_ack - run.first_publish),
        "publish_failed": run.failed,
        "acked": run.acked_readings,
        "redelivered": state["dup"],
        **cpu_report(used, state["last"] - run.first_publish, state["count"], "subscriber"),
    }
    log(
        f"  ceiling: {state['count']}/{n} messages, {out['msgs_per_s']:.0f} msgs/s first to "
        f"last received (publishers {out['publish_msgs_per_s']:.0f} msgs/s); "
        f"CPU us/msg {out['cpu_us_per_reading']}"
    )
    if state["count"] < n:
        log("  WARNING: the bare subscriber did not receive every message")
    return out


# (c) ------------------------------------------------------------------------------------------


def parkflow(bench: Bench, phase: str, n: int, msg_size: int, pace: float = 0.0) -> dict[str, Any]:
    """The ingestors, N readings in ``msg_size``-reading messages, at full speed or ``pace``
    messages/s; throughput, latency, lost and duplicated."""
    cfg = bench.cfg
    layout = bench.layout(n, msg_size)
    db = bench.database(phase)
    # Publishers fork before anything else runs in this process, then wait for go.
    pubs = bench.publishers(layout, pace)
    group = bench.ingestors(db).start()
    bench.probe(db, group)
    pubs.wait_ready()
    profiler = bench.start_profiler(phase, group.first_pid)
    vis = Visibility(bench.influx, db, layout, pubs.blocks)
    cpu = CpuMeter({**cfg.server_pids, **group.pids})
    cpu.start()
    pubs.start()
    last_progress = time.monotonic()
    deadline = last_progress + cfg.timeout * 10
    timed_out = False
    while not vis.complete:
        t = time.monotonic()
        if vis.poll():
            last_progress = time.monotonic()
        group.check_alive()
        patience = 20.0 if pubs.poll_done() else cfg.timeout
        if time.monotonic() - last_progress > patience or time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(max(0.0, cfg.poll_interval - (time.monotonic() - t)))
    used = cpu.stop()
    all_stored = vis.last_seen
    run = pubs.results(cfg.timeout + 60)
    used["publishers"] = run.cpu
    bench.stop_profiler(profiler)
    metrics = group.metrics()
    group.stop()
    check = bench.verify(db, layout, run)
    seconds = all_stored - run.first_publish
    lat = vis.latencies(run)
    out = {
        "n": n,
        "message_readings": msg_size,
        "messages": run.messages,
        "readings_per_s": rate(vis.visible, seconds),
        "seconds_first_publish_to_all_stored": round(seconds, 3),
        "complete": vis.complete and not timed_out,
        "publish_msgs_per_s": rate(run.messages, run.last_ack - run.first_publish),
        "publish_failed": run.failed,
        "latency_ms_p50": ms(percentile(lat, 0.50)),
        "latency_ms_p99": ms(percentile(lat, 0.99)),
        "latency_ms_max": ms(lat[-1] if lat else None),
        "latency_samples": len(lat),
        "poll_period_ms": vis.poll_period_ms,
        "polls": vis.polls,
        **check,
        "redelivered": max(0, int(metrics.get("messages_received", 0)) - run.messages - 1),
        "ingestors": cfg.ingestors,
        **cpu_report(used, seconds, vis.visible, "ingestor"),
        "ingestor_metrics": metrics,
    }
    if pace:
        out["paced_msgs_per_s"] = pace
    log(
        f"  {phase}: {vis.visible}/{n} readings stored, {out['readings_per_s']:.0f} readings/s"
        f" (publishers {out['publish_msgs_per_s']:.0f} msgs/s), latency p50 "
        f"{out['latency_ms_p50']} ms p99 {out['latency_ms_p99']} ms, lost {check['lost']}, "
        f"duplicated {check['duplicated']}; ingestor CPU us/reading "
        f"{out['cpu_us_per_reading']}"
    )
    if not out["complete"]:
        log(f"  WARNING: not every reading was stored; ingestor log tail:\n{group.log_tail()}")
    return out


def single(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    log(f"(c) parkflow ingest, {plan.single_n} single-reading messages")
    return parkflow(bench, "single", plan.single_n, 1)


def batch(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    log(f"(c) parkflow ingest, {plan.batch_n} readings in {BATCH_MESSAGE}-reading messages")
    return parkflow(bench, "batch", plan.batch_n, BATCH_MESSAGE)


def paced(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    fastest = median_run(runs.get("single", []), PHASES["single"].rate_key)
    pace = plan.paced_rate or round(fastest.get("readings_per_s", 4000) / 2, -2)
    seconds = plan.paced_seconds or (5 if plan.quick else 10)
    n = round_n(int(pace * seconds), plan.publishers)
    log(f"(c) parkflow ingest, {n} single-reading messages at {pace:.0f}/s")
    return parkflow(bench, "paced", n, 1, pace)


# (d) ------------------------------------------------------------------------------------------


def drain(bench: Bench, plan: Plan, runs: Runs) -> dict[str, Any]:
    """Capacity without publishers competing for the CPU: N single-reading messages are
    queued on the broker for an offline session, then the bare subscriber, and in a second
    round the ingestor, come back and take them. Rates are steady-state: from the first
    message received (bare) or the first poll that saw readings (ingestor) to the last."""
    n = plan.single_n
    log(f"(d) drain: {n} single-reading messages queued, then consumed")
    cfg = bench.cfg
    # the bare subscriber
    sub, pubs = _bare_with_publishers(bench, n, "bare-drain", drain=True)
    pubs.start()
    pubs.results(cfg.timeout + 60)
    settle()
    cpu = CpuMeter(cfg.server_pids)
    cpu.start()
    sub.come_back()
    state = sub.result()
    bare_used = {**cpu.stop(), "subscriber": state["cpu"]}
    sub.join()
    bare_s = state["last"] - state["first"]
    bare = {
        "received": state["count"],
        "msgs_per_s": rate(state["count"], bare_s),
        **cpu_report(bare_used, bare_s, state["count"], "subscriber"),
    }
    log(f"  drain, bare subscriber: {bare['msgs_per_s']:.0f} msgs/s")
    settle()
    # the ingestor
    layout = bench.layout(n, 1)
    db = bench.database("drain")
    pubs = bench.publishers(layout)
    group = bench.ingestors(db).start()
    bench.probe(db, group)
    group.stop()  # the sessions and their subscriptions stay on the broker
    pubs.wait_ready()
    pubs.start()
    run = pubs.results(cfg.timeout + 60)
    settle()
    group.start()
    profiler = bench.start_profiler("drain", group.first_pid)
    cpu = CpuMeter({**cfg.server_pids, **group.pids})
    cpu.start()
    vis = Visibility(bench.influx, db, layout, run.blocks)
    vis.poll()
    at_ready = vis.visible
    first: tuple[float, int] | None = None
    last_progress = time.monotonic()
    while not vis.complete and time.monotonic() - last_progress < 20:
        t = time.monotonic()
        if vis.poll():
            last_progress = time.monotonic()
            if first is None:
                first = (last_progress, vis.visible)
        time.sleep(max(0.0, cfg.poll_interval - (time.monotonic() - t)))
    used = cpu.stop()
    bench.stop_profiler(profiler)
    metrics = group.metrics()
    group.stop()
    check = bench.verify(db, layout, run)
    done = vis.last_seen
    steady = rate(vis.visible - first[1], done - first[0]) if first else 0.0
    out = {
        "n": n,
        "bare": bare,
        "ingestor_readings_per_s": steady,
        "ratio": round(steady / bare["msgs_per_s"], 3) if bare["msgs_per_s"] else None,
        "complete": vis.complete,
        **check,
        **cpu_report(used, done - (first[0] if first else done), n - at_ready, "ingestor"),
        "ingestor_metrics": metrics,
    }
    log(
        f"  drain, ingestor: {steady:.0f} readings/s (ratio {out['ratio']}), lost "
        f"{check['lost']}, CPU us/reading {out['cpu_us_per_reading']}"
    )
    return out


PHASES: dict[str, Phase] = {
    "raw": Phase(influx_raw, "points_per_s"),
    "ceiling": Phase(ceiling, "msgs_per_s"),
    "single": Phase(single, "readings_per_s"),
    "batch": Phase(batch, "readings_per_s"),
    "paced": Phase(paced, "readings_per_s"),
    "drain": Phase(drain, "ingestor_readings_per_s"),
}
DEFAULT_PHASES = ("raw", "ceiling", "single", "batch", "paced")  # drain: optional
