"""Notifications and secrets for the alert tests."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from service.alerts.channels import Language, Notification, Recipient, Severity

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()


def note(
    text: str = "A tenant about 300 m away could use about 150 m3/day of your effluent.",
    *,
    tenant: str = "dye",
    language: Language = "en",
    severity: Severity = "info",
    **data: Any,
) -> Notification:
    return Notification(
        id=str(uuid.uuid4()),
        recipient=Recipient("hp", tenant=tenant),
        kind="opportunity_new",
        subject="Exchange opportunity",
        severity=severity,
        language=language,
        text=text,
        created_at=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
        data=data,
    )
