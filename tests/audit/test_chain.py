"""The audit chain: appends are chained, and the verifier names any edit, deletion or swap."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from parrain.audit import service as audit
from parrain.audit.chain import GENESIS_HASH, BreakKind, entry_hash
from parrain.audit.errors import InvalidAuditEntry
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock


def _append(database: Database, clock: FrozenClock, count: int) -> None:
    for n in range(1, count + 1):
        clock.advance(timedelta(minutes=1))
        database.run(
            lambda s, n=n: audit.record(
                session=s,
                actor="operator:test",
                action=f"test.step{n}",
                subject=f"thing:{n}",
                details={"n": n, "note": "étape"},
                clock=clock,
            )
        )


def _verify(database: Database) -> audit.ChainReport:
    return database.read(lambda s: audit.verify_chain(session=s))


def test_entries_chain_each_to_the_one_before(database: Database, clock: FrozenClock) -> None:
    _append(database, clock, 3)
    entries = database.read(lambda s: audit.list_entries(session=s))
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert json.loads(entries[2].details) == {"n": 3, "note": "étape"}
    report = _verify(database)
    assert report.intact
    assert report.entries == 3


def test_an_empty_log_is_intact(database: Database) -> None:
    report = _verify(database)
    assert report.intact
    assert report.entries == 0


def test_an_edited_entry_is_named(database: Database, clock: FrozenClock) -> None:
    _append(database, clock, 5)
    with database.transaction() as s:
        s.execute(text("UPDATE audit_entries SET details = :d WHERE seq = 3"), {"d": '{"n":99}'})
    report = _verify(database)
    assert not report.intact
    assert [(b.seq, b.kind) for b in report.breaks] == [(3, BreakKind.EDITED)]
    assert "entry #3 (test.step3) was edited" in report.breaks[0].message


def test_an_edit_with_a_recomputed_hash_still_breaks_the_link(
    database: Database, clock: FrozenClock
) -> None:
    _append(database, clock, 4)
    [second] = database.read(lambda s: audit.list_entries(session=s, after_seq=1, limit=1))
    forged = entry_hash(
        prev_hash=second.prev_hash,
        occurred_at=second.occurred_at,
        actor="someone-else",
        action=second.action,
        subject=second.subject,
        details=second.details,
    )
    with database.transaction() as s:
        s.execute(
            text("UPDATE audit_entries SET actor = 'someone-else', hash = :h WHERE seq = 2"),
            {"h": forged},
        )
    report = _verify(database)
    assert not report.intact
    assert report.breaks[0].seq == 3  # entry 3 no longer chains to entry 2


def test_a_deleted_entry_is_named(database: Database, clock: FrozenClock) -> None:
    _append(database, clock, 5)
    with database.transaction() as s:
        s.execute(text("DELETE FROM audit_entries WHERE seq = 2"))
    report = _verify(database)
    assert [(b.seq, b.kind) for b in report.breaks] == [(2, BreakKind.DELETED)]
    assert "entry #2 is missing" in report.breaks[0].message


def test_deleting_the_last_entries_is_caught_by_the_head(
    database: Database, clock: FrozenClock
) -> None:
    _append(database, clock, 5)
    with database.transaction() as s:
        s.execute(text("DELETE FROM audit_entries WHERE seq >= 4"))
    report = _verify(database)
    assert [(b.seq, b.kind) for b in report.breaks] == [(4, BreakKind.DELETED)]
    assert "#4 to #5" in report.breaks[0].message


def test_a_deletion_hidden_by_renumbering_is_caught(database: Database, clock: FrozenClock) -> None:
    _append(database, clock, 5)
    with database.transaction() as s:
        s.execute(text("DELETE FROM audit_entries WHERE seq = 3"))
        s.execute(text("UPDATE audit_entries SET seq = seq - 1 WHERE seq > 3"))
    report = _verify(database)
    assert not report.intact
    assert report.breaks[0].seq == 3
    assert report.breaks[0].kind is BreakKind.DELETED


def test_two_swapped_entries_are_named(database: Database, clock: FrozenClock) -> None:
    _append(database, clock, 5)
    with database.transaction() as s:
        s.execute(text("UPDATE audit_entries SET seq = 100 WHERE seq = 2"))
        s.execute(text("UPDATE audit_entries SET seq = 2 WHERE seq = 4"))
        s.execute(text("UPDATE audit_entries SET seq = 4 WHERE seq = 100"))
    report = _verify(database)
    assert not report.intact
    reordered = {b.seq for b in report.breaks if b.kind is BreakKind.REORDERED}
    assert {2, 4} <= reordered
    assert all(b.kind is not BreakKind.EDITED for b in report.breaks)
    assert "entry #2 (test.step4) is out of order" in report.breaks[0].message


def test_bad_entries_are_refused_and_nothing_is_written(
    database: Database, clock: FrozenClock
) -> None:
    with pytest.raises(InvalidAuditEntry):
        database.run(
            lambda s: audit.record(session=s, actor="", action="x", subject="y", clock=clock)
        )
    with pytest.raises(InvalidAuditEntry):
        database.run(
            lambda s: audit.record(
                session=s, actor="a", action="x", subject="y", details={"x": object()}, clock=clock
            )
        )
    assert _verify(database).entries == 0


def test_concurrent_appends_form_one_unbroken_chain(database: Database, clock: FrozenClock) -> None:
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            for i in range(15):
                database.run(
                    lambda s, i=i: audit.record(
                        session=s,
                        actor=f"worker:{number}",
                        action="test.concurrent",
                        subject=f"item:{number}:{i}",
                        clock=clock,
                    )
                )
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(database)
    assert report.intact
    assert report.entries == 90
