"""Named transaction locks: on PostgreSQL, two transactions locking one name take turns."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from parrain.db.locks import lock_key, lock_names
from parrain.db.session import Database


def test_lock_keys_are_stable_signed_64_bit_integers() -> None:
    key = lock_key("device:GB:abc")
    assert key == lock_key("device:GB:abc")
    assert key != lock_key("device:GB:abd")
    assert -(2**63) <= key < 2**63


def test_transactions_locking_the_same_name_do_not_interleave(database: Database) -> None:
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def critical(session: Session) -> None:
        nonlocal inside, overlaps
        lock_names(session, ["device:GB:shared", "user:GB:shared"])
        with guard:
            inside += 1
            overlaps += inside > 1
        time.sleep(0.02)
        with guard:
            inside -= 1

    threads = [threading.Thread(target=database.run, args=(critical,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == 0  # SQLite: BEGIN IMMEDIATE serialises; PostgreSQL: the advisory locks
