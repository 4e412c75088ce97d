"""The sweep methods report success only when Coinbase says so: a 200 whose body is not an explicit
`"success": true` (here the simulator's error_200 fault: an error object in place of the answer) is no
sweep. Before the fix, any 2xx body without `success` read as a scheduled (or cancelled) sweep."""

from __future__ import annotations

from tests.client.conftest import SimEnv


async def test_a_200_error_body_is_not_a_scheduled_or_cancelled_sweep(env: SimEnv) -> None:
    async with env.client() as client:
        env.sim.faults.update({"error_200_rate": 1.0})
        assert await client.futures.schedule_sweep("100") is False
        assert await client.futures.schedule_sweep() is False
        assert env.sim.injected["error_200"] == 2, "the fault under test did happen"
        assert env.sim.pending_sweep is None  # the simulator scheduled nothing, and the client says so
        env.sim.faults.update({"error_200_rate": 0.0})
        assert await client.futures.schedule_sweep("100") is True
        assert env.sim.pending_sweep is not None
        env.sim.faults.update({"error_200_rate": 1.0})
        assert await client.futures.cancel_sweep() is False
        assert env.sim.pending_sweep is not None  # still pending: the cancel never reached the handler
        env.sim.faults.update({"error_200_rate": 0.0})
        assert await client.futures.cancel_sweep() is True
        assert env.sim.pending_sweep is None
