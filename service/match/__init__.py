"""Matching: which tenants could use each surplus, how much, and what it is worth."""

from service.match.opportunity import Opportunity, Value, opportunity_id
from service.match.rank import match

__all__ = ["Opportunity", "Value", "match", "opportunity_id"]
