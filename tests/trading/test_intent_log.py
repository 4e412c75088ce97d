from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.trading.intent_log import IntentLog, RecordKind


def test_records_survive_reopening_until_rewound(tmp_path: Path) -> None:
    log = IntentLog(tmp_path / "log", capacity=1 << 16)
    log.append(RecordKind.INTENT, ("w-1-1", "BTC-USD", "BUY", "{}", 1, 1))
    log.append(RecordKind.OUTCOME, ("OPEN", "ord-1", None, None, None, None, 2, "w-1-1"))
    log.close()  # no flush, no sync: what a killed process leaves in the page cache
    reopened = IntentLog(tmp_path / "log")
    assert reopened.replay() == [
        (RecordKind.INTENT, ["w-1-1", "BTC-USD", "BUY", "{}", 1, 1]),
        (RecordKind.OUTCOME, ["OPEN", "ord-1", None, None, None, None, 2, "w-1-1"]),
    ]
    reopened.append(RecordKind.FILL, ("e1",))  # appends after the replayed records
    assert [kind for kind, _ in reopened.replay()] == [RecordKind.INTENT, RecordKind.OUTCOME, RecordKind.FILL]
    reopened.rewind()
    reopened.close()
    assert IntentLog(tmp_path / "log").replay() == []


def test_replay_stops_at_a_torn_record(tmp_path: Path) -> None:
    log = IntentLog(tmp_path / "log", capacity=1 << 16)
    for i in range(3):
        log.append(RecordKind.INTENT, (f"w-1-{i}", "BTC-USD", "BUY", "{}", i, i))
    end_of_second = 16 + 2 * (log.used // 3)  # the records are the same size
    log.close()
    raw = bytearray((tmp_path / "log").read_bytes())
    raw[end_of_second + 20] ^= 0xFF  # a kill mid-copy: the third record's bytes are not all there
    (tmp_path / "log").write_bytes(bytes(raw))
    assert [fields[0] for _, fields in IntentLog(tmp_path / "log").replay()] == ["w-1-0", "w-1-1"]


def test_records_of_an_earlier_epoch_are_not_replayed(tmp_path: Path) -> None:
    log = IntentLog(tmp_path / "log", capacity=1 << 16)
    for i in range(5):
        log.append(RecordKind.INTENT, (f"old-{i}",))
    log.rewind()
    log.append(RecordKind.INTENT, ("new-0",))  # shorter than the old first record: old bytes follow it
    log.close()
    assert IntentLog(tmp_path / "log").replay() == [(RecordKind.INTENT, ["new-0"])]


def test_a_full_log_says_so_and_a_record_too_big_for_it_is_an_error(tmp_path: Path) -> None:
    log = IntentLog(tmp_path / "log", capacity=200)
    assert log.append(RecordKind.INTENT, ("x" * 100,))
    assert not log.append(RecordKind.INTENT, ("y" * 100,))
    log.rewind()
    with pytest.raises(ValueError, match="does not fit"):
        log.append(RecordKind.INTENT, ("z" * 1000,))
    log.close()


def test_a_file_that_is_not_an_intent_log_is_refused(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"SQLite format 3\0" + bytes(100))
    with pytest.raises(ConfigError, match="not an intent log"):
        IntentLog(tmp_path / "log")
