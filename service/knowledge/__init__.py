"""Resource knowledge: substitution rules, prices and emission factors as data with sources."""

from service.knowledge.schema import (
    DEFAULT_KNOWLEDGE,
    Knowledge,
    KnowledgeError,
    Rule,
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
