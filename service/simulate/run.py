"""One simulation: scenario -> readings -> MQTT messages -> ground truth, and where they go.

``prepare`` is what ``parkflow simulate``, ``parkflow demo`` and the tests share. ``write``
puts the registry and the truth where ingestors and scorers read them; ``publish`` backfills
over MQTT and can keep publishing live. Only ``publish`` needs an MQTT client, and imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from parkflow.registry.schema import RegistryFile
from parkflow.timeunits import DAY_MS, days_ms
from service.knowledge import Knowledge
from service.simulate.flows import STEP_MS, Generated, generate
from service.simulate.messages import Plan, plan_messages
from service.simulate.scenario import WINDOW_DAYS, Scenario, build_scenario
from service.simulate.truth import Truth, build_truth, to_json

if TYPE_CHECKING:
    from service.simulate.publish import PublishReport


@dataclass(frozen=True)
class Simulation:
    """A scenario's readings over (start_ms, end_ms], as messages, and its answer key."""

    scenario: Scenario
    start_ms: int
    end_ms: int
    generated: Generated
    plan: Plan
    truth: Truth

    @property
    def days(self) -> float:
        return (self.end_ms - self.start_ms) / DAY_MS

    def summary(self) -> list[str]:
        """What was planted and what the ingestor must make of the messages."""
        park, plan, truth = self.scenario.park, self.plan, self.truth
        bad = ", ".join(f"{n} {r}" for r, n in sorted(plan.quarantined.items()))
        return [
            f"scenario {self.scenario.name}: {len(park.tenants)} tenants,"
            f" {sum(len(t.meters) for t in park.tenants)} meters;"
            f" planted {len(truth.opportunities)} opportunities,"
            f" {len(truth.non_opportunities)} non-opportunities, {len(truth.faults)} faults",
            f"{self.days:g} days of history: {len(plan.messages)} messages,"
            f" {plan.readings_sent} readings, of which {plan.duplicates} duplicates and"
            f" {bad or 'none'} to be quarantined; {plan.unique_good} readings to store",
        ]


def prepare(
    base: RegistryFile,
    seed: int | None,
    knowledge: Knowledge,
    end_ms: int,
    days: float,
    *,
    window_days: int = WINDOW_DAYS,
) -> Simulation:
    """The sample park ``base`` as designed (``seed`` None) or drawn from ``seed``, with
    ``days`` of readings up to ``end_ms`` (floored to the reading step) and the truth for
    detection run then over ``window_days``. ValueError: no clear design for the seed, or
    none in this window."""
    scenario = build_scenario(base, seed, knowledge)
    return prepare_scenario(scenario, knowledge, end_ms, days, window_days)


def prepare_scenario(
    scenario: Scenario,
    knowledge: Knowledge,
    end_ms: int,
    days: float,
    window_days: int = WINDOW_DAYS,
) -> Simulation:
    """``prepare`` for a scenario already built."""
    end = end_ms - end_ms % STEP_MS
    start = end - days_ms(days)
    gen = generate(
        scenario.park,
        scenario.profiles,
        start,
        end,
        noise_seed=scenario.noise_seed,
        faults=scenario.faults,
    )
    plan = plan_messages(gen.series, scenario.faults, end_ms=end, seed=scenario.noise_seed)
    truth = build_truth(
        scenario,
        knowledge,
        end,
        faults=gen.faults + plan.faults,
        plan=plan,
        window_days=window_days,
        start_ms=start,
    )
    return Simulation(scenario, start, end, gen, plan, truth)


def write(sim: Simulation, out: Path) -> tuple[Path, Path]:
    """``registry.yaml`` (what ingestors must load) and ``truth.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    registry, truth = out / "registry.yaml", out / "truth.json"
    registry.write_text(sim.scenario.registry_yaml(), encoding="utf-8")
    truth.write_text(to_json(sim.truth), encoding="utf-8")
    return registry, truth


def publish(
    sim: Simulation,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    username: str | None = None,
    password: str | None = None,
    mqtt_version: Literal["5", "3.1.1"] = "5",
    live_interval_s: float | None = None,
    speed: float = 1.0,
    report: Callable[[str], None] = print,
) -> PublishReport:
    """Backfill the messages and wait until the broker acknowledged each; with
    ``live_interval_s``, then publish each meter's new readings that often (simulated time
    ``speed`` times faster, never ahead of the wall clock) until Ctrl-C. Returns the
    backfill's report; raises ConnectionError, OSError or TimeoutError."""
    from paho.mqtt.enums import MQTTProtocolVersion

    from service.simulate.publish import Publisher, live

    protocol = MQTTProtocolVersion.MQTTv5 if mqtt_version == "5" else MQTTProtocolVersion.MQTTv311
    with Publisher(
        host, port, username=username, password=password, protocol=protocol
    ) as publisher:
        backfill = publisher.send(sim.plan.messages)
        report(f"backfill published: {backfill.line()}")
        if backfill.refused or live_interval_s is None:
            return backfill
        report(
            f"live: every {live_interval_s:g} s, simulated time x{speed:g}"
            " (never ahead of the wall clock); Ctrl-C stops"
        )
        stop = threading.Event()
        try:
            live(
                sim.scenario,
                publisher,
                sim.end_ms,
                sim.generated.registers,
                interval_s=live_interval_s,
                speed=speed,
                stop=stop,
                report=report,
            )
        except KeyboardInterrupt:
            stop.set()
            report("stopped")
    return backfill
