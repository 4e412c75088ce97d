"""The order journal: every order's intent is on disk before its request leaves, its outcome after.

SQLite in WAL mode through the stdlib: one dedicated connection, statements prepared once (sqlite3's
statement cache), a table keyed by `client_order_id` WITHOUT ROWID (one b-tree to write).

Durability `os` (survives a killed process): every record (intent, outcome, fill) is appended to the intent
log (`engine.trading.intent_log`, a shared memory map beside the database), which is durable against a kill
the moment the bytes are copied, with no system call; `flush()` writes the batch to SQLite
(synchronous=NORMAL) in one transaction and rewinds the log, and opening the journal replays what a killed
process left in it. The order path thus pays ~2 µs for its intent instead of an SQLite commit. So that the
owner's thread (the engine's event loop) never waits on SQLite either, `start_flush()` hands the records to
`write_queued()`, which another thread runs; the owner then calls `settle()`.

Durability `fsync` (survives a lost machine): an intent is committed to SQLite (synchronous=FULL) before it
returns, at the price of an fsync, so callers on an event loop run the journal on a worker thread (see
`engine.trading.engine`). Outcomes and fills are batched: they ride in the transaction of the next intent or
of `flush()`. Losing an unflushed outcome to a lost machine is harmless: the order is then still PENDING_NEW
in the journal, and reconciliation looks it up by `client_order_id`.

Reads flush first, so they see everything recorded.

On an event loop (durability `os`), the owner attaches the thread that runs `write_queued` as `writer`; then
every statement while trading runs there: "was this client_order_id used" is answered from memory (a recent
window and a Bloom filter, `engine.trading.used_ids`, loaded when the journal opens), and what memory cannot
settle (`ensure_new`, `entry`, `known_fills`, `written`) is awaited from the writer thread. Opening, the
synchronous reads (`entries`, `get`, `fills`: start-up and reconciliation) and `close` do their I/O on the
caller's thread.

The database is opened in exclusive locking mode: two engines sharing a journal would each reconcile the
other's orders, so a second opener is refused.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import ConfigError
from engine.trading.intent_log import DEFAULT_CAPACITY, IntentLog, RecordKind
from engine.trading.order_state import OrderState
from engine.trading.used_ids import UsedIds

T = TypeVar("T")

_SCHEMA_VERSION: Final = 1
_AUTOCHECKPOINT_PAGES: Final = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    product_id      TEXT NOT NULL,
    side            TEXT NOT NULL,
    request         TEXT NOT NULL,            -- the create-order body as sent (JSON)
    state           TEXT NOT NULL,
    order_id        TEXT,
    filled_size     TEXT NOT NULL DEFAULT '0',
    filled_value    TEXT NOT NULL DEFAULT '0',    -- quote currency, before fees
    total_fees      TEXT NOT NULL DEFAULT '0',
    failure_reason  TEXT,
    created_ns      INTEGER NOT NULL,         -- wall clock, nanoseconds since the epoch
    updated_ns      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fills (
    entry_id        TEXT PRIMARY KEY,         -- Coinbase's unique id of one fill
    trade_id        TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    client_order_id TEXT,
    product_id      TEXT NOT NULL,
    side            TEXT NOT NULL,
    price           TEXT NOT NULL,
    size            TEXT NOT NULL,
    commission      TEXT NOT NULL,
    trade_time      TEXT NOT NULL
) WITHOUT ROWID;
"""

_INSERT_INTENT: Final = (
    "INSERT INTO orders (client_order_id, product_id, side, request, state, created_ns, updated_ns) "
    "VALUES (?, ?, ?, ?, 'PENDING_NEW', ?, ?)"
)
_INSERT_INTENT_ONCE: Final = _INSERT_INTENT.replace("INSERT INTO", "INSERT OR IGNORE INTO")
_UPDATE_OUTCOME: Final = (
    "UPDATE orders SET state = ?, order_id = coalesce(?, order_id), filled_size = coalesce(?, filled_size), "
    "filled_value = coalesce(?, filled_value), total_fees = coalesce(?, total_fees), "
    "failure_reason = coalesce(?, failure_reason), updated_ns = ? WHERE client_order_id = ?"
)
_INSERT_FILL: Final = (
    "INSERT OR IGNORE INTO fills (entry_id, trade_id, order_id, client_order_id, product_id, side, price, "
    "size, commission, trade_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ORDERS: Final = (
    "SELECT client_order_id, product_id, side, request, state, order_id, filled_size, filled_value, "
    "total_fees, failure_reason, created_ns, updated_ns FROM orders"
)


class Durability(enum.Enum):
    OS = "os"  # survives a killed process (intent log in a shared map; WAL, synchronous=NORMAL)
    FSYNC = "fsync"  # survives a lost machine (WAL, synchronous=FULL)


# Replaying the intent log: its intents may be in SQLite already (a kill between commit and rewind).
_REPLAY: Final = {
    RecordKind.INTENT: _INSERT_INTENT_ONCE,
    RecordKind.OUTCOME: _UPDATE_OUTCOME,
    RecordKind.FILL: _INSERT_FILL,
}


def intent_log_path(journal_path: str | Path) -> Path:
    """Where a journal keeps its intent log (durability `os`): beside the database, like SQLite's -wal."""
    path = Path(journal_path)
    return path.with_name(path.name + "-intents")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    client_order_id: str
    product_id: str
    side: str
    request: str
    state: OrderState
    order_id: str | None
    filled_size: Decimal
    filled_value: Decimal
    total_fees: Decimal
    failure_reason: str | None
    created_ns: int
    updated_ns: int


@dataclass(frozen=True, slots=True)
class JournalFill:
    entry_id: str
    trade_id: str
    order_id: str
    client_order_id: str | None
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    trade_time: str


def _used_error(client_order_id: str) -> sqlite3.IntegrityError:
    return sqlite3.IntegrityError(f"client_order_id {client_order_id} is already journalled")


def _nothing() -> None:
    return None


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(
        client_order_id=row[0],
        product_id=row[1],
        side=row[2],
        request=row[3],
        state=OrderState(row[4]),
        order_id=row[5],
        filled_size=Decimal(row[6]),
        filled_value=Decimal(row[7]),
        total_fees=Decimal(row[8]),
        failure_reason=row[9],
        created_ns=row[10],
        updated_ns=row[11],
    )


class OrderJournal:
    """A durable record of every order this engine placed.

    One thread owns it: it records, reads, flushes and settles. Only `write_queued` may run on another
    thread (one at a time), and only SQLite is shared with it, under a lock."""

    def __init__(
        self,
        path: str | Path,
        durability: Durability | str = Durability.OS,
        *,
        log_capacity: int = DEFAULT_CAPACITY,
        recent_ids: int = 100_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`recent_ids`: how many of this run's latest client_order_ids are kept exactly in memory (earlier
        ones are in a Bloom filter: a hit there is looked up in SQLite). `clock`'s wall time dates records."""
        self.path = Path(path)
        self._wall_time = clock.now
        self.durability = Durability(durability)
        # isolation_level=None: no implicit transactions, so an intent is one statement = one commit.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        try:
            self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute(
                "PRAGMA synchronous = " + ("FULL" if self.durability is Durability.FSYNC else "NORMAL")
            )
            # Checkpoints copy the WAL into the database: slow, so not on the order path. The engine calls
            # `checkpoint()` when idle; this high threshold is only the safety net for other users.
            self._db.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise ConfigError(f"journal {self.path} has schema {version}, expected {_SCHEMA_VERSION}")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise ConfigError(f"journal {self.path} is in use by another engine process") from exc
            raise
        if str(mode).lower() != "wal":
            self._db.close()
            raise ConfigError(f"journal {self.path}: the filesystem does not support SQLite's WAL mode")
        self._pending: list[tuple[str, tuple[Any, ...]]] = []  # recorded, not yet taken for SQLite
        # Batches `start_flush` took, oldest first, until `write_queued` has committed them.
        self._queued: deque[list[tuple[str, tuple[Any, ...]]]] = deque()
        self._queue_lock = threading.Lock()  # held only to look at or change `_queued`
        self._db_lock = threading.Lock()  # held for every use of the connection after opening
        # Fill ids recorded but perhaps not in SQLite yet: kept until every record is (a superset is right).
        self._pending_fills: set[str] = set()
        self.writer: Executor | None = None  # the thread that runs `write_queued`, if the owner has one
        self._closed = False
        # The log is opened, and replayed, under SQLite's exclusive lock: it has one writer.
        self._log: IntentLog | None = None
        log_path = intent_log_path(self.path)
        if self.durability is Durability.OS or log_path.exists():
            try:
                log = IntentLog(log_path, log_capacity)
            except BaseException:
                self._db.close()
                raise
            self._replay(log)
            if self.durability is Durability.OS:
                self._log = log
            else:  # an fsync journal that ran with `os` before: its log is replayed, then no longer needed
                log.close()
                log_path.unlink()
        self._used = self._load_used(recent_ids)

    def _load_used(self, window: int) -> UsedIds:
        """Every client_order_id journalled, into memory (on opening: the one full scan)."""
        count = self._db.execute("SELECT count(*) FROM orders").fetchone()[0]
        used = UsedIds(count, window=window)
        for (client_order_id,) in self._db.execute("SELECT client_order_id FROM orders"):
            used.add_old(client_order_id)
        return used

    def _replay(self, log: IntentLog) -> None:
        records = log.replay()
        if records:
            self._db.execute("BEGIN")
            try:
                for kind, fields in records:
                    self._db.execute(_REPLAY[kind], fields)
            except BaseException:
                self._db.execute("ROLLBACK")
                log.close()
                self._db.close()
                raise
            self._db.execute("COMMIT")
        log.rewind()

    # -- the order path ---------------------------------------------------------------------------------

    def record_intent(
        self,
        client_order_id: str,
        product_id: str,
        side: str,
        request: str,
        *,
        carry_pending: bool = True,
        fresh: bool = False,
    ) -> None:
        """Record an order about to be sent. Durable (per `durability`) when this returns.

        Durability `os`: appended to the intent log (~2 µs); SQLite gets it with the next `flush()`.
        Durability `fsync`: committed to SQLite, with the queued outcomes unless `carry_pending` is False.

        Raises `sqlite3.IntegrityError` if the client_order_id was already journalled: sending it again would
        not place a second order (Coinbase returns the first), but it would confuse the caller's bookkeeping.
        The check is in memory; only an id the Bloom filter cannot clear is looked up in SQLite, here (an
        owner on an event loop awaits `ensure_new` first, which looks it up on the writer thread).
        `fresh=True` skips the check for an id known to be new (one this run's `ClientOrderIds` just made, or
        one `ensure_new` cleared).
        """
        now = int(self._wall_time() * 1e9)
        params = (client_order_id, product_id, side, request, now, now)
        log = self._log
        if log is not None:
            if not fresh and self._used_now(client_order_id):
                raise _used_error(client_order_id)
            self._log_record(log, RecordKind.INTENT, _INSERT_INTENT_ONCE, params)
            self._used.add(client_order_id)
            return
        with self._db_lock:
            self._write_queued()
            if not carry_pending or not self._pending:
                self._db.execute(_INSERT_INTENT, params)
                self._used.add(client_order_id)
                return
            # Queued outcomes ride in the same commit: one disk write for all of them. If it fails, they
            # stay queued.
            self._transaction([*self._pending, (_INSERT_INTENT, params)])
        self._used.add(client_order_id)
        self._committed()

    def _used_now(self, client_order_id: str) -> bool:
        """Owner's thread: whether the id was journalled, from memory or else from SQLite on this thread."""
        seen = self._used.seen(client_order_id)
        if seen is None:
            return self._read_now(self._select_used, client_order_id)
        return seen

    async def ensure_new(self, client_order_id: str) -> None:
        """Raise `sqlite3.IntegrityError` if the id was journalled: from memory, or awaited from the writer
        thread when memory cannot tell. Then record its intent with `fresh=True`."""
        seen = self._used.seen(client_order_id)
        if seen is None:
            seen = await self._read(self._select_used, client_order_id)
        if seen:
            raise _used_error(client_order_id)

    async def entry(self, client_order_id: str) -> JournalEntry | None:
        """`get`, for an owner on an event loop: None from memory for an id never used, else the row read on
        the writer thread after everything recorded so far is written."""
        if self._used.seen(client_order_id) is False:
            return None
        return await self._read(self._select_entry, client_order_id)

    async def known_fills(self, entry_ids: Iterable[str]) -> set[str]:
        """Which of these fills are journalled already (read on the writer thread, if there is one)."""
        pending = self._pending_fills  # taken now: settling after the read clears it
        ids = list(entry_ids)
        recorded = {entry_id for entry_id in ids if entry_id in pending}
        wanted = [entry_id for entry_id in ids if entry_id not in recorded]
        return recorded | (await self._read(self._select_fills, wanted) if wanted else set())

    async def written(self) -> None:
        """Everything recorded so far is in SQLite, written on the writer thread if there is one."""
        await self._read(_nothing)

    async def _read(self, query: Callable[..., T], *args: Any) -> T:
        """Owner's thread: `query` (under the database lock) once every record so far is in SQLite; run on the
        writer thread, and awaited, if there is one."""
        writer = self.writer
        if writer is None:
            return self._read_now(query, *args)
        self.start_flush()
        try:
            return await asyncio.get_running_loop().run_in_executor(writer, self._write_then, query, args)
        finally:
            self.settle()

    def _read_now(self, query: Callable[..., T], *args: Any) -> T:
        self.flush()
        with self._db_lock:
            return query(*args)

    def _write_then(self, query: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Writer thread: the queued batches, then `query`."""
        with self._db_lock:
            self._write_queued()
            return query(*args)

    def _select_used(self, client_order_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM orders WHERE client_order_id = ?", (client_order_id,))
        return row.fetchone() is not None

    def _select_entry(self, client_order_id: str) -> JournalEntry | None:
        row = self._db.execute(_SELECT_ORDERS + " WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _entry(row)

    def _select_fills(self, entry_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(entry_ids), 500):  # under SQLite's limit of bound parameters
            batch = entry_ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            query = f"SELECT entry_id FROM fills WHERE entry_id IN ({marks})"  # noqa: S608 (only "?" marks)
            rows = self._db.execute(query, batch)
            found.update(row[0] for row in rows)
        return found

    def _log_record(self, log: IntentLog, kind: RecordKind, sql: str, params: tuple[Any, ...]) -> None:
        """Durable in the log, then queued for SQLite; a full log is written to SQLite (which rewinds it)
        first."""
        if not log.append(kind, params):
            self._make_room()
            log.append(kind, params)
        self._pending.append((sql, params))

    def _make_room(self) -> None:
        """The log is full (thousands of records within one flush interval): write them to SQLite so that it
        rewinds. With a writer, the statements run there while the owner waits for them: back-pressure."""
        if self.writer is None:
            self.flush()
            return
        self.start_flush()
        self.writer.submit(self.write_queued).result()
        self.settle()

    def record_outcome(
        self,
        client_order_id: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        filled_size: Decimal | None = None,
        filled_value: Decimal | None = None,
        total_fees: Decimal | None = None,
        failure_reason: str | None = None,
    ) -> None:
        """Record an order's new state: in the intent log at once (`os`), in SQLite with the next intent or
        `flush()`."""
        params = (
            state.value,
            order_id,
            None if filled_size is None else str(filled_size),
            None if filled_value is None else str(filled_value),
            None if total_fees is None else str(total_fees),
            failure_reason,
            int(self._wall_time() * 1e9),
            client_order_id,
        )
        if self._log is not None:
            self._log_record(self._log, RecordKind.OUTCOME, _UPDATE_OUTCOME, params)
        else:
            self._pending.append((_UPDATE_OUTCOME, params))

    def record_fill(self, fill: JournalFill) -> None:
        """Record a fill, as `record_outcome` does; a fill already journalled (same entry_id) is ignored."""
        params = (
            fill.entry_id,
            fill.trade_id,
            fill.order_id,
            fill.client_order_id,
            fill.product_id,
            fill.side,
            str(fill.price),
            str(fill.size),
            str(fill.commission),
            fill.trade_time,
        )
        if self._log is not None:
            self._log_record(self._log, RecordKind.FILL, _INSERT_FILL, params)
        else:
            self._pending.append((_INSERT_FILL, params))
        self._pending_fills.add(fill.entry_id)

    @property
    def pending(self) -> int:
        """How many records are not yet in SQLite (with durability `os` they are in the intent log)."""
        with self._queue_lock:
            return len(self._pending) + sum(len(batch) for batch in self._queued)

    def flush(self) -> None:
        """Write every record to SQLite now, after any batch still queued for `write_queued` (waiting for one
        being written), then settle."""
        with self._db_lock:
            self._write_queued()
            if self._pending:
                self._transaction(self._pending)
        self._committed()

    def start_flush(self) -> bool:
        """Take what was recorded for `write_queued` to write on another thread; False if nothing was."""
        if not self._pending:
            return False
        batch, self._pending = self._pending, []
        with self._queue_lock:
            self._queued.append(batch)
        return True

    def write_queued(self, checkpoint: bool = False) -> None:
        """Write the batches `start_flush` took, oldest first, a transaction each (then, with `checkpoint`,
        fold the WAL into the database). The one method another thread may run; the owner then calls
        `settle()`. A batch that fails stays queued (its records are in the intent log) and is retried."""
        with self._db_lock:
            self._write_queued()
            if checkpoint:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def settle(self) -> None:
        """Owner's thread: once every record is in SQLite, forget the ids kept for lookups and rewind the log
        (a kill before the rewind is harmless: replaying the log again changes nothing)."""
        if self._pending or self._closed:
            return
        with self._queue_lock:
            if self._queued:
                return
        self._pending_fills.clear()
        if self._log is not None:
            self._log.rewind()

    def _write_queued(self) -> None:
        """With the database lock held: commit the queued batches in order."""
        while True:
            with self._queue_lock:
                if not self._queued:
                    return
                batch = self._queued[0]
            self._transaction(batch)
            with self._queue_lock:
                self._queued.popleft()

    def _transaction(self, records: list[tuple[str, tuple[Any, ...]]]) -> None:
        """With the database lock held: `records` in one transaction, or none of them."""
        execute = self._db.execute
        execute("BEGIN")
        try:
            for sql, params in records:
                execute(sql, params)
        except BaseException:
            execute("ROLLBACK")
            raise
        execute("COMMIT")

    def _committed(self) -> None:
        """Owner's thread: everything recorded is in SQLite."""
        self._pending.clear()
        self.settle()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (call it off the order path, e.g. when idle)."""
        self.flush()
        self.write_queued(checkpoint=True)

    # -- reading (reconciliation, start-up) -------------------------------------------------------------

    def get(self, client_order_id: str) -> JournalEntry | None:
        if self._used.seen(client_order_id) is False:  # never used: no flush, no lookup
            return None
        return self._read_now(self._select_entry, client_order_id)

    def entries(self, states: Iterable[OrderState] | None = None) -> list[JournalEntry]:
        """Journalled orders, oldest first, optionally only those in `states`."""
        self.flush()
        with self._db_lock:
            if states is None:
                rows = self._db.execute(_SELECT_ORDERS + " ORDER BY created_ns").fetchall()
            else:
                values = [state.value for state in states]
                marks = ",".join("?" * len(values))
                rows = self._db.execute(
                    _SELECT_ORDERS + f" WHERE state IN ({marks}) ORDER BY created_ns", values
                ).fetchall()
        return [_entry(row) for row in rows]

    def unresolved(self) -> list[JournalEntry]:
        """Orders whose existence on the exchange is unknown: to be looked up by client_order_id."""
        return self.entries((OrderState.PENDING_NEW, OrderState.UNKNOWN))

    def live(self) -> list[JournalEntry]:
        """Orders the journal last saw open on the exchange."""
        return self.entries((OrderState.OPEN,))

    def fills(self) -> list[JournalFill]:
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT entry_id, trade_id, order_id, client_order_id, product_id, side, price, size, "
                "commission, trade_time FROM fills ORDER BY trade_time, entry_id"
            ).fetchall()
        return [
            JournalFill(r[0], r[1], r[2], r[3], r[4], r[5], Decimal(r[6]), Decimal(r[7]), Decimal(r[8]), r[9])
            for r in rows
        ]

    def has_fill(self, entry_id: str) -> bool:
        if entry_id in self._pending_fills:  # no flush: reconciliation asks this between recording fills
            return True
        with self._db_lock:
            row = self._db.execute("SELECT 1 FROM fills WHERE entry_id = ?", (entry_id,)).fetchone()
        return row is not None

    def last_fill_time(self) -> str | None:
        """The latest trade_time journalled (ISO 8601, so it sorts as text), or None."""
        self.flush()
        with self._db_lock:
            row = self._db.execute("SELECT max(trade_time) FROM fills").fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Write anything queued, then close. Idempotent."""
        try:
            self.flush()
        except sqlite3.ProgrammingError:  # already closed
            return
        self._closed = True
        if self._log is not None:
            self._log.close()
        with self._db_lock:
            self._db.close()

    def __enter__(self) -> OrderJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OrderJournal(path={str(self.path)!r}, durability={self.durability.value!r})"
