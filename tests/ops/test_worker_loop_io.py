"""While a worker trades, its event loop never waits on the disk: signals go through the webhook to an
in-process worker against the simulator, and every SQL statement (sqlite3's trace callback, on every
connection opened), every file opened (an audit hook) and every file written (a profiler on the loop's thread
watching calls to `write`, `flush` and their `os` kin) is recorded with its thread. Start-up and shutdown may
do I/O; between them, none of it may run on the loop's thread."""

from __future__ import annotations

import io
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import pytest

from engine.ops.config import parse_config
from engine.signals.model import signal_client_order_id
from engine.worker import Worker
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import eventually, post_signal, resting_buy
from tests.support.keys import new_es256_key, new_webhook_secret

_OS_WRITES = {os.write, os.pwrite, os.writev, os.fsync, os.fdatasync, os.ftruncate}
_FILE_METHODS = {"write", "writelines", "flush", "truncate"}


@dataclass
class LoopIo:
    """What ran on the loop's thread while `watching`, for files under `root`."""

    root: Path
    loop_thread: int
    watching: bool = False
    statements: list[str] = field(default_factory=list)  # SQL on the loop thread
    files: list[str] = field(default_factory=list)  # opens and writes on the loop thread
    off_loop_statements: int = 0  # SQL elsewhere: proves the trace sees the journal's statements at all

    def ours(self, path: object) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(str(self.root))

    def fd_path(self, fd: object) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def traced(self, statement: str) -> None:
        if not self.watching:
            return
        if threading.get_ident() == self.loop_thread:
            self.statements.append(statement)
        else:
            self.off_loop_statements += 1

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        on_loop = self.watching and threading.get_ident() == self.loop_thread
        if on_loop and event == "open" and self.ours(args[0]):
            self.files.append(f"open {args[0]}")

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "c_call" or not self.watching:
            return
        if arg in _OS_WRITES:
            # the descriptor is the first argument of every one of them
            fd = frame.f_locals.get("fd")  # best effort: the caller's names are unknown; check them all
            for value in (fd, *frame.f_locals.values()):
                if isinstance(value, int) and value > 2 and self.ours(self.fd_path(value)):
                    self.files.append(f"{arg.__name__} {self.fd_path(value)}")
                    return
            return
        owner = getattr(arg, "__self__", None)
        if isinstance(owner, io.IOBase) and getattr(arg, "__name__", "") in _FILE_METHODS:
            name = getattr(owner, "name", None)
            if isinstance(name, int):
                name = self.fd_path(name)
            if self.ours(name):
                self.files.append(f"{arg.__name__} {name}")


_HOOKED: list[LoopIo] = []  # audit hooks cannot be removed: the one installed consults this


def _audit(event: str, args: tuple[Any, ...]) -> None:
    for watch in _HOOKED:
        watch.audit(event, args)


@pytest.fixture
def loop_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopIo]:
    watch = LoopIo(tmp_path.resolve(), threading.get_ident())
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(watch.traced)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    if not _HOOKED and not getattr(sys, "_engine_loop_io_hook", False):
        sys.addaudithook(_audit)
        sys._engine_loop_io_hook = True  # type: ignore[attr-defined]
    _HOOKED.append(watch)
    try:
        yield watch
    finally:
        _HOOKED.remove(watch)
        sys.setprofile(None)


@pytest.mark.parametrize("durability", ["os", "full"])
async def test_trading_does_no_disk_io_on_the_loop(
    running_sim: RunningSim, tmp_path: Path, loop_io: LoopIo, durability: str
) -> None:
    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    webhook_secret = new_webhook_secret()
    journal = tmp_path.resolve() / "journal.sqlite"
    config = parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "risk": {"products": ["BTC-USD"], "max_order_size": "1"},
            "signals": {"port": 0},
            "metrics": {"enabled": False},
            "journal": {"path": str(journal), "durability": durability},
        }
    )
    env = {
        "COINBASE_API_KEY": key.name,
        "COINBASE_API_SECRET": key.private_key,
        "ENGINE_WEBHOOK_SECRET": webhook_secret,
    }
    worker = Worker(config, environ=env)
    await worker.start()  # start-up may read and write the journal on the loop
    engine = worker.engine
    assert engine is not None
    assert engine.journal is not None
    audit_file = journal.with_name(journal.name + ".audit.jsonl")
    mid = sim.markets["BTC-USD"].mid
    signals = [f"loop-io-{i}" for i in range(4)]
    try:
        async with aiohttp.ClientSession() as session:
            loop_io.watching = True
            sys.setprofile(loop_io.profile)
            for signal_id in signals:
                body = resting_buy(signal_id, mid)
                assert await post_signal(session, worker.webhook_url, webhook_secret, body) == 202

            async def written() -> bool:
                # every order acknowledged, in SQLite (the writer thread's commits) and audited on disk
                acknowledged = all(
                    (tracked := engine.orders.get(signal_client_order_id(s))) is not None
                    and tracked.order_id is not None
                    for s in signals
                )
                return (
                    acknowledged
                    and engine.journal is not None
                    and engine.journal.pending == 0
                    and audit_file.stat().st_size > 0
                )

            await eventually(written)
            sys.setprofile(None)
            loop_io.watching = False
    finally:
        sys.setprofile(None)
        loop_io.watching = False
        await worker.stop()  # shutdown may write on the loop

    assert loop_io.off_loop_statements > 0  # the trace does see the journal's statements
    assert loop_io.statements == [], "SQL on the event loop's thread while trading"
    assert loop_io.files == [], "file I/O on the event loop's thread while trading"
    placed = {order.client_order_id for order in sim.ledger}
    assert {signal_client_order_id(s) for s in signals} <= placed  # each signal placed its order
