"""The figures: rates, each phase's median round, and the summary of the last-line JSON."""

from __future__ import annotations

from typing import Any


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def median_run(results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key`` (a rate) of several rounds, every round's beside it."""
    if not results:
        return {}
    ordered = sorted(results, key=lambda x: x.get(key) or 0.0)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(results) > 1:
        chosen = {**chosen, "rounds": [x.get(key) for x in results]}
    return chosen


PARKFLOW_PHASES = ("single", "batch", "paced", "drain")


def summarize(d: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The headline figures from each phase's median round ``d`` and every round ``runs``."""
    ceiling = d.get("ceiling", {}).get("msgs_per_s")
    raw = d.get("raw", {}).get("points_per_s")
    single = d.get("single", {})
    batch = d.get("batch", {})
    paced = d.get("paced", {})
    drain = d.get("drain", {})
    # lost and duplicated over every round of every parkflow phase, not just the median ones
    parkflow = [r for p in PARKFLOW_PHASES for r in runs.get(p, [])]
    s_rate = single.get("readings_per_s")
    b_rate = batch.get("readings_per_s")
    out: dict[str, Any] = {
        "single_ratio": round(s_rate / ceiling, 3) if s_rate and ceiling else None,
        "batch_ratio": round(b_rate / raw, 3) if b_rate and raw else None,
        "lost": sum(p.get("lost", 0) for p in parkflow),
        "duplicated": sum(p.get("duplicated", 0) for p in parkflow),
        "unexpected": sum(p.get("unexpected", 0) for p in parkflow),
        "ceiling_msgs_per_s": ceiling,
        "influx_raw_points_per_s": raw,
        "single_readings_per_s": s_rate,
        "batch_readings_per_s": b_rate,
        "single_latency_ms_p50": single.get("latency_ms_p50"),
        "single_latency_ms_p99": single.get("latency_ms_p99"),
        "batch_latency_ms_p50": batch.get("latency_ms_p50"),
        "batch_latency_ms_p99": batch.get("latency_ms_p99"),
        "paced_msgs_per_s": paced.get("paced_msgs_per_s"),
        "paced_latency_ms_p50": paced.get("latency_ms_p50"),
        "paced_latency_ms_p99": paced.get("latency_ms_p99"),
        "ingestor_cpu_us_per_reading_single": single.get("cpu_us_per_reading"),
        "subscriber_cpu_us_per_msg_ceiling": d.get("ceiling", {}).get("cpu_us_per_reading"),
        "n_ceiling": d.get("ceiling", {}).get("n"),
        "n_influx_raw": d.get("raw", {}).get("n"),
        "n_single": single.get("n"),
        "n_batch": batch.get("n"),
        "n_paced": paced.get("n"),
        "drain_ratio": drain.get("ratio"),
        "drain_bare_msgs_per_s": drain.get("bare", {}).get("msgs_per_s"),
        "drain_ingestor_readings_per_s": drain.get("ingestor_readings_per_s"),
        "complete": all(p.get("complete", True) for p in parkflow),
    }
    targets = {
        "single_ratio": (out["single_ratio"] or 0) >= 0.9,
        "batch_ratio": (out["batch_ratio"] or 0) >= 0.5,
        "lost": out["lost"] == 0,
        "duplicated": out["duplicated"] == 0,
    }
    out["targets_met"] = targets
    return out
