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


def test_uuid_form_ids_for_a_venue_that_takes_only_uuids() -> None:
    import uuid

    ids = ClientOrderIds("w", uuid=True)
    made = [ids.next() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in made)
    assert all(ids.minted(i) for i in made)
    assert not ClientOrderIds("w", uuid=True).minted(made[0])  # another run's boot
    fixed = ClientOrderIds("w", boot="0123456789abcdef01", uuid=True)
    assert [fixed.next() for _ in range(2)] == [
        "01234567-89ab-4cde-8f01-000000000001",
        "01234567-89ab-4cde-8f01-000000000002",
    ]
    with pytest.raises(ValueError, match="18 lowercase hex digits"):
        ClientOrderIds("w", boot="00ff", uuid=True)
