from __future__ import annotations

import pytest

from engine.trading.ids import MAX_CLIENT_ORDER_ID_LENGTH, ClientOrderIds, worker_of


def test_ids_are_unique_within_a_generator() -> None:
    ids = ClientOrderIds("alpha")
    made = [ids.next() for _ in range(50_000)]
    assert len(set(made)) == len(made)


def test_two_generators_with_the_same_prefix_never_collide() -> None:
    first, second = ClientOrderIds("w1"), ClientOrderIds("w1")
    assert first.boot != second.boot
    assert {first.next() for _ in range(1000)}.isdisjoint({second.next() for _ in range(1000)})


def test_ids_trace_to_their_worker_and_fit_coinbase_limit() -> None:
    ids = ClientOrderIds("x" * 64)
    ids._counter = iter([2**64 - 1])  # type: ignore[assignment]  # the longest counter a run could reach
    client_order_id = ids.next()
    assert len(client_order_id) <= MAX_CLIENT_ORDER_ID_LENGTH
    assert worker_of(client_order_id) == "x" * 64
    assert worker_of(ClientOrderIds("mm_eu.2").next()) == "mm_eu.2"
    assert worker_of("some-other-client-id") is None


def test_boot_can_be_pinned_and_ids_are_sequential() -> None:
    ids = ClientOrderIds("w", boot="00ff")
    assert [ids.next() for _ in range(3)] == ["w-00ff-1", "w-00ff-2", "w-00ff-3"]


@pytest.mark.parametrize("prefix", ["", "has-dash", "sp ace", "x" * 65, "é"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        ClientOrderIds(prefix)
