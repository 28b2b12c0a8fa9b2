"""Resource knowledge: substitution rules, prices and emission factors as data with sources."""

from service.knowledge.entries import Rule
from service.knowledge.knowledge import Knowledge
from service.knowledge.load import (
    DEFAULT_KNOWLEDGE,
    KnowledgeError,
    load_knowledge,
    merge_knowledge,
    parse_knowledge,
)

__all__ = [
    "DEFAULT_KNOWLEDGE",
    "Knowledge",
    "KnowledgeError",
    "Rule",
    "load_knowledge",
    "merge_knowledge",
    "parse_knowledge",
]
