"""Time-ordered identifiers (UUID version 7, RFC 9562) and derived ids.

UUIDv7 ids sort by creation time, which keeps B-tree inserts at the right edge of the index
on both SQLite and PostgreSQL. ``derived_id`` gives a stable id for an operation that must
happen at most once (the transfer that pays reward R, say): the same inputs, the same id.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_NAMESPACE = uuid.UUID("6f1f5a52-6b9e-4b8e-9d55-706172726169")
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> uuid.UUID:
    """A new UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits.

    The counter keeps ids created in the same millisecond in creation order within a process.
    """
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def derived_id(*parts: object) -> uuid.UUID:
    """A deterministic id for an at-most-once operation named by ``parts``."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts))


def id_timestamp_ms(value: uuid.UUID) -> int:
    """The Unix millisecond timestamp a UUIDv7 was created at."""
    return value.int >> 80
