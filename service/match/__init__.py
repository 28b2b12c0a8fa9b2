"""Matching: which tenants could use each surplus, how much, and what it is worth."""

from service.match.opportunity import Opportunity, Value, opportunity_id
from service.match.rank import Matches, match, match_all

__all__ = ["Matches", "Opportunity", "Value", "match", "match_all", "opportunity_id"]
