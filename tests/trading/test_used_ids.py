"""The journal's in-memory answer to "was this client_order_id used": never a wrong "no", rarely "perhaps"."""

from __future__ import annotations

from engine.trading.used_ids import UsedIds


def test_recent_ids_are_known_exactly_older_ones_never_forgotten() -> None:
    used = UsedIds(window=1_000)
    ids = [f"strategy-{i}" for i in range(200_000)]  # past the first filter's capacity: it grows
    for client_order_id in ids:
        used.add(client_order_id)
    assert len(used) == len(ids)
    assert all(used.seen(i) is True for i in ids[-1_000:])  # the window: exact
    assert all(used.seen(i) is not False for i in ids)  # no id recorded is ever "never used"


def test_ids_never_used_are_mostly_cleared_from_memory() -> None:
    used = UsedIds(50_000)
    for i in range(50_000):
        used.add_old(f"old-{i}")  # a journal's earlier ids: in the filter only
    probes = [f"new-{i}" for i in range(20_000)]
    perhaps = sum(used.seen(p) is None for p in probes)
    assert all(used.seen(p) is not True for p in probes)
    assert (
        perhaps < len(probes) * 0.02
    )  # ~0.3 % expected at this fill; "perhaps" costs a lookup, not a mistake


def test_adding_an_id_twice_counts_it_once() -> None:
    used = UsedIds()
    used.add("a")
    used.add("a")
    assert len(used) == 1
    assert used.seen("a") is True
    assert used.seen("b") is False
