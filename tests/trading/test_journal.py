from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.trading.journal import Durability, JournalFill, OrderJournal, intent_log_path
from engine.trading.order_state import OrderState
from tests.support import leaks

REQUEST = '{"product_id":"BTC-USD","side":"BUY"}'


def on_disk(journal: OrderJournal, client_order_id: str) -> str | None:
    """The order's state as SQLite holds it now, without the flush that the journal's reads do first."""
    row = journal._db.execute(
        "SELECT state FROM orders WHERE client_order_id = ?", (client_order_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def test_intent_then_outcome_round_trip(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db") as journal:
        journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
        entry = journal.get("w-1-1")
        assert entry is not None
        assert entry.state is OrderState.PENDING_NEW
        assert entry.request == REQUEST
        journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
        journal.record_outcome("w-1-1", OrderState.FILLED, filled_size=Decimal("0.5"))
        journal.flush()
        entry = journal.get("w-1-1")
        assert entry is not None
        assert (entry.state, entry.order_id, entry.filled_size) == (
            OrderState.FILLED,
            "ord-1",
            Decimal("0.5"),
        )
    journal.close()  # closing twice is harmless


def test_fsync_outcomes_are_batched_until_the_next_intent_or_flush(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = OrderJournal(path, durability="fsync")
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    assert on_disk(journal, "w-1-1") == "PENDING_NEW"  # the intent is committed before it returns
    journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
    assert journal.pending == 1
    assert on_disk(journal, "w-1-1") == "PENDING_NEW"  # the outcome is not yet written
    journal.record_intent("w-1-2", "ETH-USD", "SELL", REQUEST)  # carries the queued outcome with it
    assert journal.pending == 0
    assert on_disk(journal, "w-1-1") == "OPEN"
    journal.close()
    with OrderJournal(path, durability="fsync") as reopened:
        assert [(e.client_order_id, e.state) for e in reopened.entries()] == [
            ("w-1-1", OrderState.OPEN),
            ("w-1-2", OrderState.PENDING_NEW),
        ]
        assert [e.client_order_id for e in reopened.unresolved()] == ["w-1-2"]
        assert [e.client_order_id for e in reopened.live()] == ["w-1-1"]


def test_os_records_go_to_the_intent_log_and_reach_sqlite_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = OrderJournal(path)
    assert intent_log_path(path).exists()
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
    assert journal.pending == 2
    assert on_disk(journal, "w-1-1") is None  # in the log only: no SQLite work on the order path
    journal.flush()
    assert journal.pending == 0
    assert on_disk(journal, "w-1-1") == "OPEN"
    journal.record_intent("w-1-2", "ETH-USD", "SELL", REQUEST)
    entry = journal.get("w-1-2")  # reads flush first: they see everything recorded
    assert entry is not None
    assert entry.state is OrderState.PENDING_NEW
    journal.close()
    with OrderJournal(path) as reopened:
        assert [(e.client_order_id, e.state) for e in reopened.entries()] == [
            ("w-1-1", OrderState.OPEN),
            ("w-1-2", OrderState.PENDING_NEW),
        ]


def test_os_flushes_written_on_another_thread_keep_the_order_of_records(tmp_path: Path) -> None:
    """`start_flush` hands a batch over; records made meanwhile, and a read that flushes them, land after it:
    the newest outcome wins, and the log is rewound only once every record in it is in SQLite."""
    path = tmp_path / "j.db"
    journal = OrderJournal(path)
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
    assert journal.start_flush()
    assert not journal.start_flush()  # nothing new since
    journal.record_outcome("w-1-1", OrderState.CANCELLED)  # recorded while the batch waits for its writer
    assert journal.pending == 3
    assert on_disk(journal, "w-1-1") is None
    entry = journal.get("w-1-1")  # writes the older batch first, then the newer record
    assert entry is not None
    assert entry.state is OrderState.CANCELLED
    assert journal.pending == 0

    journal.record_intent("w-1-2", "BTC-USD", "BUY", REQUEST)
    assert journal.start_flush()
    journal.record_outcome("w-1-2", OrderState.OPEN, order_id="ord-2")
    writer = threading.Thread(target=journal.write_queued)
    writer.start()
    writer.join()
    assert on_disk(journal, "w-1-2") == "PENDING_NEW"  # the batch, not the outcome recorded after it
    used = intent_log_path(path).read_bytes()
    journal.settle()  # one record is still only in the log: it must stay there
    assert intent_log_path(path).read_bytes() == used
    journal.close()
    with OrderJournal(path) as reopened:
        assert [(e.client_order_id, e.state) for e in reopened.entries()] == [
            ("w-1-1", OrderState.CANCELLED),
            ("w-1-2", OrderState.OPEN),
        ]


def test_os_a_kill_with_a_batch_handed_over_but_not_written_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = OrderJournal(path)
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    assert journal.start_flush()  # handed to a writer that never ran: the process is killed now
    journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
    left_by_a_kill = intent_log_path(path).read_bytes()
    journal._log.close()  # type: ignore[union-attr]  # what a kill leaves: the log, no flush, no rewind
    journal._db.close()
    intent_log_path(path).write_bytes(left_by_a_kill)
    with OrderJournal(path) as reopened:
        assert [(e.client_order_id, e.state, e.order_id) for e in reopened.entries()] == [
            ("w-1-1", OrderState.OPEN, "ord-1")
        ]


def test_os_a_log_left_by_a_kill_is_replayed_once_even_if_already_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    log = intent_log_path(path)
    journal = OrderJournal(path)
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
    journal.record_fill(
        JournalFill("e1", "t1", "ord-1", "w-1-1", "BTC-USD", "BUY", Decimal(1), Decimal(1), Decimal(0), "t")
    )
    left_by_a_kill = log.read_bytes()  # the log as a process killed before its flush leaves it
    journal.close()  # commits and rewinds
    # a kill after the commit but before the rewind: the same records are in SQLite and in the log
    log.write_bytes(left_by_a_kill)
    with OrderJournal(path) as reopened:
        entries = reopened.entries()
        assert [(e.client_order_id, e.state, e.order_id) for e in entries] == [
            ("w-1-1", OrderState.OPEN, "ord-1")
        ]
        assert [f.entry_id for f in reopened.fills()] == ["e1"]
        assert reopened.pending == 0
    with OrderJournal(path) as again:  # and the log was rewound by the replay
        assert len(again.entries()) == 1


def test_os_a_full_intent_log_is_flushed_not_lost(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db", log_capacity=4096) as journal:
        for i in range(200):  # about 20 records fit: the log fills and is flushed many times over
            journal.record_intent(f"w-1-{i}", "BTC-USD", "BUY", REQUEST)
            journal.record_outcome(f"w-1-{i}", OrderState.OPEN, order_id=f"ord-{i}")
        assert journal.pending < 40
        entries = journal.entries()
        assert [e.client_order_id for e in entries] == [f"w-1-{i}" for i in range(200)]
        assert all(e.state is OrderState.OPEN for e in entries)


def test_an_fsync_journal_replays_a_log_left_by_an_os_run(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = OrderJournal(path)
    journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    left_by_a_kill = intent_log_path(path).read_bytes()
    journal.close()
    intent_log_path(path).write_bytes(left_by_a_kill)
    with OrderJournal(path, durability="fsync") as reopened:
        assert [e.client_order_id for e in reopened.entries()] == ["w-1-1"]
    assert not intent_log_path(path).exists()


def test_unresolved_lists_pending_and_unknown_only(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db") as journal:
        for i, state in enumerate(
            [
                OrderState.PENDING_NEW,
                OrderState.UNKNOWN,
                OrderState.OPEN,
                OrderState.REJECTED,
                OrderState.FILLED,
            ]
        ):
            journal.record_intent(f"w-1-{i}", "BTC-USD", "BUY", REQUEST)
            if state is not OrderState.PENDING_NEW:
                journal.record_outcome(
                    f"w-1-{i}", state, failure_reason="X" if state is OrderState.REJECTED else None
                )
        journal.flush()
        assert [e.client_order_id for e in journal.unresolved()] == ["w-1-0", "w-1-1"]
        rejected = journal.get("w-1-3")
        assert rejected is not None
        assert rejected.failure_reason == "X"


@pytest.mark.parametrize("durability", ["os", "fsync"])
def test_a_client_order_id_is_journalled_once(tmp_path: Path, durability: str) -> None:
    with OrderJournal(tmp_path / "j.db", durability) as journal:
        journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
        with pytest.raises(sqlite3.IntegrityError):
            journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)  # os: still only in the log
        journal.record_outcome("w-1-1", OrderState.OPEN)
        pending = journal.pending
        # a failed intent leaves queued outcomes queued, not lost
        with pytest.raises(sqlite3.IntegrityError):
            journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
        assert journal.pending == pending
        journal.flush()
        with pytest.raises(sqlite3.IntegrityError):
            journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)  # now from SQLite
        entry = journal.get("w-1-1")
        assert entry is not None
        assert entry.state is OrderState.OPEN


def test_fills_are_deduplicated_by_trade_id(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db") as journal:
        fill = JournalFill(
            "e-1",
            "t-1",
            "ord-1",
            "w-1-1",
            "BTC-USD",
            "BUY",
            Decimal("100"),
            Decimal("0.1"),
            Decimal("0.01"),
            "2026-01-01T00:00:01Z",
        )
        journal.record_fill(fill)
        journal.record_fill(fill)
        journal.record_fill(
            JournalFill(
                "e-0",
                "t-0",
                "ord-1",
                "w-1-1",
                "BTC-USD",
                "BUY",
                Decimal("99"),
                Decimal("0.2"),
                Decimal("0"),
                "2026-01-01T00:00:00Z",
            )
        )
        journal.flush()
        assert [f.entry_id for f in journal.fills()] == ["e-0", "e-1"]
        assert journal.fills()[1] == fill
        assert journal.has_fill("e-1")
        assert not journal.has_fill("e-2")
        assert journal.last_fill_time() == "2026-01-01T00:00:01Z"


def test_a_second_engine_cannot_open_the_same_journal(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db") as journal:
        journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
        with pytest.raises(ConfigError, match="in use"):
            OrderJournal(tmp_path / "j.db")


def test_fsync_durability(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db", durability="fsync") as journal:
        assert journal.durability is Durability.FSYNC
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
    with OrderJournal(tmp_path / "j.db") as journal:
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal.get("w-1-1") is not None


_WRITER = textwrap.dedent(
    """
    import sys
    from engine.trading.journal import OrderJournal
    from engine.trading.order_state import OrderState

    journal = OrderJournal(sys.argv[1], sys.argv[2])
    for i in range(1_000_000):
        coid = f"w-1-{i}"
        journal.record_intent(coid, "BTC-USD", "BUY", '{"i": %d}' % i)
        print(coid, flush=True)  # only after the intent is durable
        journal.record_outcome(coid, OrderState.OPEN, order_id=f"ord-{i}")
        if i % 97 == 0:
            journal.flush()  # as the engine's timer does: a kill may come mid-log or mid-commit
    """
)


@pytest.mark.parametrize("durability", ["os", "fsync"])
def test_a_process_killed_mid_stream_leaves_a_readable_journal(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "j.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline().strip() for _ in range(500 if durability == "os" else 50)]
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    # Read the rest through the same buffered stream: readline() may already hold lines read ahead, which
    # communicate() would skip (it reads the pipe's file descriptor directly).
    assert writer.stderr is not None
    leaks.observe(writer.stderr.read())
    acknowledged += writer.stdout.read().split()
    assert writer.returncode == -signal.SIGKILL
    with OrderJournal(path, durability) as journal:
        entries = {e.client_order_id: e for e in journal.entries()}
        # every intent the writer reported durable is there; at most the one in flight is extra
        assert set(acknowledged) <= set(entries)
        assert len(entries) - len(acknowledged) <= 1
        # os: outcomes are in the log too, so only the last one can be missing; fsync: they are batched with
        # the next intent or flush, so all but the last two are written
        written = acknowledged[:-1] if durability == "os" else acknowledged[:-2]
        assert all(entries[c].state is OrderState.OPEN for c in written)
        assert journal._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_checkpoint_folds_the_wal_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with OrderJournal(path) as journal:
        for i in range(50):
            journal.record_intent(f"w-1-{i}", "BTC-USD", "BUY", REQUEST)
        journal.record_outcome("w-1-0", OrderState.OPEN)
        journal.checkpoint()
        assert journal.pending == 0
        busy, wal_frames, checkpointed = journal._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0
        assert wal_frames == checkpointed
    with OrderJournal(path) as journal:
        assert len(journal.entries()) == 50


def test_fsync_an_intent_can_be_written_alone_leaving_outcomes_for_the_flush(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db", durability="fsync") as journal:
        journal.record_intent("w-1-1", "BTC-USD", "BUY", REQUEST)
        journal.record_outcome("w-1-1", OrderState.OPEN, order_id="ord-1")
        journal.record_intent("w-1-2", "BTC-USD", "BUY", REQUEST, carry_pending=False)
        assert journal.pending == 1  # still queued: the intent went alone
        assert (on_disk(journal, "w-1-1"), on_disk(journal, "w-1-2")) == ("PENDING_NEW", "PENDING_NEW")
        journal.flush()
        first = journal.get("w-1-1")
        assert first is not None
        assert (first.state, first.order_id) == (OrderState.OPEN, "ord-1")


def _traced_threads(journal: OrderJournal) -> list[tuple[int, str]]:
    """Every statement the journal's connection runs from now on, with its thread."""
    seen: list[tuple[int, str]] = []
    journal._db.set_trace_callback(lambda statement: seen.append((threading.get_ident(), statement)))
    return seen


async def test_os_with_a_writer_the_loop_answers_from_memory_or_awaits_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with OrderJournal(path) as earlier:  # an earlier run: its ids are in SQLite only
        for i in range(50):
            earlier.record_intent(f"old-{i}", "BTC-USD", "BUY", REQUEST)
        earlier.record_outcome("old-7", OrderState.FILLED, order_id="ord-7")
    writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
    # the earlier run's ids are in the Bloom filter only, as are this run's beyond a window of 10 ids
    with OrderJournal(path, recent_ids=10) as journal:
        journal.writer = writer
        statements = _traced_threads(journal)
        loop_thread = threading.get_ident()

        assert await journal.entry("never-used") is None  # memory: no statement at all
        await journal.ensure_new("never-used")
        assert statements == []

        entry = await journal.entry("old-7")  # outside the window: read on the writer thread
        assert entry is not None
        assert entry.state is OrderState.FILLED
        with pytest.raises(sqlite3.IntegrityError):
            await journal.ensure_new("old-3")
        with pytest.raises(sqlite3.IntegrityError):
            await journal.ensure_new("old-49")

        journal.record_intent("new-1", "BTC-USD", "BUY", REQUEST, fresh=True)  # in the intent log only
        with pytest.raises(sqlite3.IntegrityError):
            await journal.ensure_new("new-1")
        with pytest.raises(sqlite3.IntegrityError):
            journal.record_intent("new-1", "BTC-USD", "BUY", REQUEST)
        journal.record_outcome("new-1", OrderState.OPEN, order_id="ord-new")
        fresh = await journal.entry("new-1")  # what was recorded is written first, then read
        assert fresh is not None
        assert fresh.state is OrderState.OPEN

        journal.record_fill(
            JournalFill(
                "e-1", "t-1", "ord-new", "new-1", "BTC-USD", "BUY", Decimal(1), Decimal(1), Decimal(0), "T"
            )
        )
        assert await journal.known_fills(["e-1", "e-2"]) == {"e-1"}
        for i in range(20):  # this run's ids: past the window of 10, the first ones move to the filter
            journal.record_intent(f"run-{i}", "BTC-USD", "BUY", REQUEST, fresh=True)
        for i in (0, 19):
            with pytest.raises(sqlite3.IntegrityError):
                await journal.ensure_new(f"run-{i}")
        await journal.written()
        assert journal.pending == 0
        assert statements  # the trace sees them
        assert all(thread != loop_thread for thread, _ in statements), statements
    writer.shutdown()


def test_os_a_full_intent_log_with_a_writer_is_written_there(tmp_path: Path) -> None:
    writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
    with OrderJournal(tmp_path / "j.db", log_capacity=4096) as journal:
        journal.writer = writer
        statements = _traced_threads(journal)
        for i in range(200):  # the log fills many times over: the owner waits for the writer, back-pressure
            journal.record_intent(f"w-1-{i}", "BTC-USD", "BUY", REQUEST, fresh=True)
            journal.record_outcome(f"w-1-{i}", OrderState.OPEN, order_id=f"ord-{i}")
        assert statements
        assert all(thread != threading.get_ident() for thread, _ in statements)
        journal.writer = None
        entries = journal.entries()
        assert [e.client_order_id for e in entries] == [f"w-1-{i}" for i in range(200)]
        assert all(e.state is OrderState.OPEN for e in entries)
    writer.shutdown()
