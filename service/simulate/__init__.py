"""``parkflow simulate``: a fictional park whose meters publish over MQTT, with a ground truth.

``scenario`` designs the park (registry, flow profiles, planted faults, and the planted cases
``cases`` declares) from a seed; ``flows`` turns it into readings and MQTT messages; ``oracle``
reckons each planted case's figures from the designed flows and ``truth`` writes the answer key
and scores detection against it; ``run`` ties them together for the command, the demo and the
tests; ``publish`` sends it all through the real ingest path. Everything but ``publish`` is
pure; this module does not import it, so the pure parts load without an MQTT client.
"""

from service.simulate.cases import Case, planted_cases
from service.simulate.flows import STEP_MS, Fault, Series, generate
from service.simulate.messages import Plan, plan_messages
from service.simulate.oracle import Verdict, judge
from service.simulate.profiles import Profile
from service.simulate.run import Simulation, prepare, prepare_scenario, write
from service.simulate.scenario import (
    Scenario,
    build_scenario,
    default_scenario,
    detection_window,
    random_scenario,
)
from service.simulate.truth import MATCHED_TOLERANCE, Score, Truth, build_truth, score, to_json

__all__ = [
    "MATCHED_TOLERANCE",
    "STEP_MS",
    "Case",
    "Fault",
    "Plan",
    "Profile",
    "Scenario",
    "Score",
    "Series",
    "Simulation",
    "Truth",
    "Verdict",
    "build_scenario",
    "build_truth",
    "default_scenario",
    "detection_window",
    "generate",
    "judge",
    "plan_messages",
    "planted_cases",
    "prepare",
    "prepare_scenario",
    "random_scenario",
    "score",
    "to_json",
    "write",
]
