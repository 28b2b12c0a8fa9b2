"""What was quarantined, for an operator to read: ``parkflow quarantine`` (and the API later).

The raw payloads are untrusted bytes: shown only as a bounded, escaped excerpt, so that a
megabyte of garbage, a control sequence that would repaint the terminal, or invalid UTF-8 is
one short, printable line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parkflow.model import QuarantinedMessage, Rejection
from parkflow.store.ports import QuarantineLog

EXCERPT_CHARS = 200
_ELLIPSIS = "…"
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """``None`` means no restriction; times are epoch ms, received in ``[since_ms, until_ms)``."""

    since_ms: int | None = None
    until_ms: int | None = None
    park: str | None = None
    tenant: str | None = None
    meter: str | None = None
    reason: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    received_ms: int
    reason: str
    park: str | None
    tenant: str | None
    meter: str | None
    topic: str
    index: int | None  # the reading's position in a batch; None: the whole message
    detail: str
    excerpt: str  # escaped, at most ``EXCERPT_CHARS`` characters plus an ellipsis
    size: int | None  # the payload's full size in bytes (None: the message was not kept)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received_ms": self.received_ms,
            "reason": self.reason,
            "park": self.park,
            "tenant": self.tenant,
            "meter": self.meter,
            "topic": self.topic,
            "index": self.index,
            "detail": self.detail,
            "excerpt": self.excerpt,
            "size": self.size,
        }


def quarantine_rows(
    log: QuarantineLog, f: QuarantineFilter, excerpt_chars: int = EXCERPT_CHARS
) -> list[QuarantineRow]:
    """The records matching ``f``, most recent first, each with its message's excerpt."""
    rejections = log.quarantined(
        reason=f.reason,
        since_ms=f.since_ms,
        limit=f.limit,
        until_ms=f.until_ms,
        park=f.park,
        tenant=f.tenant,
        meter=f.meter,
    )
    messages = log.quarantined_messages(rejections)
    return [_row(r, messages.get(r.message_id), excerpt_chars) for r in rejections]


def _row(r: Rejection, m: QuarantinedMessage | None, excerpt_chars: int) -> QuarantineRow:
    return QuarantineRow(
        received_ms=r.received_ms,
        reason=r.reason,
        park=r.park,
        tenant=r.tenant,
        meter=r.meter,
        topic=escape(r.topic, excerpt_chars),
        index=r.index,
        detail=escape(r.detail, excerpt_chars),
        excerpt="" if m is None else excerpt(m.payload, excerpt_chars, m.truncated),
        size=None if m is None else m.size,
    )


def excerpt(payload: bytes, chars: int = EXCERPT_CHARS, truncated: bool = False) -> str:
    """The payload's beginning as one printable line: UTF-8 where it is, ``\\xNN`` for the
    bytes that are not, and an ellipsis when more followed (here or in what was not kept)."""
    # A character takes at most 4 bytes: decode no more than could be shown.
    head = payload[: 4 * chars + 4]
    text = escape(head.decode("utf-8", "surrogateescape"), chars)
    if (len(head) < len(payload) or truncated) and not text.endswith(_ELLIPSIS):
        text += _ELLIPSIS
    return text


def escape(text: str, chars: int = EXCERPT_CHARS) -> str:
    """``text`` with backslashes, control and other unprintable characters escaped, cut after
    ``chars`` characters of output (never inside an escape) with an ellipsis."""
    out: list[str] = []
    used = 0
    for ch in text:
        piece = _escaped(ch)
        if used + len(piece) > chars:
            out.append(_ELLIPSIS)
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)


def _escaped(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if ch.isprintable():
        return ch
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
