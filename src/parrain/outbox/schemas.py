"""What an outbox message looks like to the code that delivers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Envelope:
    """A claimed message: what a webhook sends, and which attempt this is."""

    id: UUID
    topic: str
    payload: dict[str, Any]
    created_at: datetime
    attempt: int
