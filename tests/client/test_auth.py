"""Each AuthError diagnosis the simulator can provoke, and clock-skew recovery at start and after a 401."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
import pytest

from engine.auth import CdpKey
from engine.errors import AuthDiagnosis, AuthError
from engine.rest import Client, LimitGtc, Side
from tests.client.conftest import FAST_RETRY, SimEnv
from tests.support.keys import TestKey, new_es256_key


async def test_missing_trade_permission(env: SimEnv, register_key: Callable[..., TestKey]) -> None:
    view_only = register_key(permissions={"view"})
    async with env.client(key=view_only) as client:
        assert (await client.accounts()).items
        with pytest.raises(AuthError) as refused:
            await client.create_order("BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price="1000"))
    error = refused.value
    assert error.diagnosis is AuthDiagnosis.MISSING_PERMISSION
    assert error.status == 403
    assert "'trade'" in error.hint
    assert len(env.sim.ledger) == 0


async def test_ip_not_allowed(env: SimEnv, register_key: Callable[..., TestKey]) -> None:
    fenced = register_key(allowed_ips=["10.1.2.0/24"])
    async with env.client(key=fenced) as client:
        with pytest.raises(AuthError) as refused:
            await client.accounts()
    assert refused.value.diagnosis is AuthDiagnosis.IP_NOT_ALLOWED
    assert "allowlist" in refused.value.hint


async def test_unknown_key_is_a_bad_signature_not_a_retry_loop(env: SimEnv) -> None:
    stranger = new_es256_key()  # never registered
    async with Client(CdpKey(stranger.name, stranger.private_key), env.base_url, retry=FAST_RETRY) as client:
        with pytest.raises(AuthError) as refused:
            await client.accounts()
    assert refused.value.diagnosis is AuthDiagnosis.BAD_SIGNATURE
    assert refused.value.status == 401
    # one refused call, the clock re-check (public), one permissions probe: no retry storm
    assert env.sim.auth_failures.get("unknown_key") == 2


@pytest.mark.parametrize("sim_config", [{"clock_offset": 400.0}])
async def test_clock_offset_is_measured_at_start(env: SimEnv) -> None:
    async with env.client() as client:
        assert client.clock_offset_s == pytest.approx(400.0, abs=2.0)
        await client.create_order("BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price="1000"))
    assert len(env.sim.ledger) == 1
    assert not env.sim.auth_failures


async def test_a_401_from_skew_remeasures_and_retries_once(env: SimEnv) -> None:
    async with env.client() as client:
        assert abs(client.clock_offset_s) < 2.0
        env.sim.faults.update({"clock_offset_s": -300.0})  # the exchange's clock jumps back 5 minutes
        result = await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price="1000")
        )
        assert client.clock_offset_s == pytest.approx(-300.0, abs=2.0)
        assert (await client.accounts()).items
    assert env.sim.auth_failures.get("not_yet_valid") == 1
    assert env.ledger_client_order_ids() == [result.client_order_id]


async def test_exchange_wrong_passphrase_and_timestamp_skew(env: SimEnv) -> None:
    async with env.exchange_client(passphrase="not-the-passphrase") as client:
        with pytest.raises(AuthError) as refused:
            await client.exchange.accounts()
    assert refused.value.diagnosis is AuthDiagnosis.BAD_PASSPHRASE
    assert "Invalid Passphrase" in str(refused.value)

    async with env.exchange_client() as client:
        env.sim.faults.update({"clock_offset_s": 120.0})  # outside the 30 s HMAC window
        assert await client.exchange.accounts()
        assert client.clock_offset_s == pytest.approx(120.0, abs=2.0)
    assert env.sim.auth_failures.get("expired") == 1


@pytest.mark.parametrize("sim_config", [{"clock_offset": 400.0}])
async def test_tokens_are_never_dated_ahead_of_the_exchange_clock(env: SimEnv) -> None:
    """The signer uses the lower bound of the measured offset, so a token's nbf never runs ahead of the
    exchange's clock (which would be refused as not yet valid), however the round trip fell."""
    async with env.client() as client:
        sample = client.clock.last
        assert sample is not None
        key = client.transport.key
        assert key.clock_offset == client.clock.signing_offset_s
        assert client.clock.signing_offset_s <= sample.offset_s - sample.round_trip_s / 2.0
        for _ in range(200):
            token = key.rest_jwt("GET", "/api/v3/brokerage/accounts", host="h")
            claims = orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            assert claims["nbf"] <= env.sim.clock.now()
