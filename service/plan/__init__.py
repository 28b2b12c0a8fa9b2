"""The park's plan: which exchanges to run, and how much each carries, when receivers compete.

Matching sizes every link alone; the plan allocates each surplus among its receivers (and each
receiver's demand among its suppliers) so that the park's annual value is the greatest one
that no surplus and no demand can carry, solved as a mixed-integer programme (HiGHS).
"""

from service.plan.model import LinkInput, Node, ParkProblem, Plan, PlanLink
from service.plan.solve import ParkSolution, make_plan, solve_park

__all__ = [
    "LinkInput",
    "Node",
    "ParkProblem",
    "ParkSolution",
    "Plan",
    "PlanLink",
    "make_plan",
    "solve_park",
]
