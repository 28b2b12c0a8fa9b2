"""The assessment criteria as data (``service/knowledge/criteria.yaml``), read and checked.

A criterion's text is only as good as its source: each says whether it was verified, and a
criterion that was not says what is known instead, so the report never shows an invented
threshold as the law's. Which figure parkflow fills for it is named by ``metric``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from parkflow.errors import ConfigError
from parkflow.yamlfile import load_mapping, read_text, validate_model

CRITERIA_FILE = Path(__file__).parent.parent / "knowledge" / "criteria.yaml"

# The figures a report can fill from metered data (service/report/assemble.py).
METRICS = frozenset(
    {
        "operating_exchanges",
        "participation_share",
        "water_reused_m3",
        "landfill_diverted_t",
        "co2e_avoided_t",
        "park_savings_vnd",
    }
)


class CriteriaError(ConfigError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("criteria", problems)


class Status(StrEnum):
    VERIFIED = "verified"
    PARTLY_VERIFIED = "partly_verified"
    UNVERIFIED = "unverified"


class Framework(StrEnum):
    DECREE_35_2022 = "decree_35_2022"
    CIRCULAR_05_2025 = "circular_05_2025"
    IEF_V2 = "ief_v2"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    id: str
    citation: str
    url: str | None = None
    accessed: date
    note: str | None = None


class Texts(_Model):
    en: str
    vi: str

    def get(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en


class Criterion(_Model):
    id: str
    framework: Framework
    reference: str
    status: Status
    text: Texts
    known: Texts | None = None
    metric: str | None = None
    sources: list[str]

    @model_validator(mode="after")
    def _checked(self) -> Criterion:
        if self.status is not Status.VERIFIED and not self.known:
            raise ValueError("a criterion not fully verified says what is known (`known`)")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {sorted(METRICS)}")
        if not self.sources:
            raise ValueError("a criterion cites at least one source")
        return self


class CriteriaFile(_Model):
    version: int
    sources: list[Source]
    criteria: list[Criterion]

    @model_validator(mode="after")
    def _references(self) -> CriteriaFile:
        known = {s.id for s in self.sources}
        ids = [c.id for c in self.criteria]
        if len(ids) != len(set(ids)):
            raise ValueError("two criteria share an id")
        for c in self.criteria:
            missing = [s for s in c.sources if s not in known]
            if missing:
                raise ValueError(f"criterion {c.id} cites unknown sources {missing}")
        return self

    def source(self, source_id: str) -> Source:
        return next(s for s in self.sources if s.id == source_id)


def load_criteria(path: str | Path | None = None) -> CriteriaFile:
    src = str(path or CRITERIA_FILE)
    data = load_mapping(read_text(src, CriteriaError), src, CriteriaError)
    return validate_model(CriteriaFile, data, CriteriaError, src)
