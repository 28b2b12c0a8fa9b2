"""``parkflow simulate``: a fictional park whose meters publish over MQTT, with a ground truth.

``scenario`` designs the park (registry, flow profiles, planted faults) from a seed, ``flows``
turns it into readings and MQTT messages, ``oracle`` and ``truth`` say what detection should
find, and ``publish`` sends it all through the real ingest path. Everything but ``publish`` is
pure; this module does not import it, so the pure parts load without an MQTT client.
"""

from service.simulate.flows import STEP_MS, Fault, Plan, Series, generate, plan_messages
from service.simulate.oracle import Verdict, classify
from service.simulate.profiles import Profile
from service.simulate.scenario import (
    Scenario,
    build_scenario,
    default_scenario,
    detection_window,
    random_scenario,
)
from service.simulate.truth import Score, Truth, build_truth, score, to_json

__all__ = [
    "STEP_MS",
    "Fault",
    "Plan",
    "Profile",
    "Scenario",
    "Score",
    "Series",
    "Truth",
    "Verdict",
    "build_scenario",
    "build_truth",
    "classify",
    "default_scenario",
    "detection_window",
    "generate",
    "plan_messages",
    "random_scenario",
    "score",
    "to_json",
]
