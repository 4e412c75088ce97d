"""`engine doctor --venue derivatives` against the simulator's gateway: a good key, an unknown key, a key
without trade, each with its fix."""

from __future__ import annotations

from collections.abc import Callable

from engine.auth import CdpKey
from engine.doctor import Status, check_gateway_key
from tests.derivatives.client.conftest import GatewayEnv
from tests.support.keys import TestKey, new_ed25519_key


async def test_a_registered_key_passes_every_check(gateway: GatewayEnv) -> None:
    checks = await check_gateway_key(gateway.key(), gateway.base_url, trades=True, timeout_s=5)
    assert [c.name for c in checks] == ["token exchange", "scopes", "read-only call"]
    assert all(c.status is Status.OK for c in checks), checks


async def test_an_unknown_key_fails_the_token_exchange_with_a_fix(gateway: GatewayEnv) -> None:
    stranger = new_ed25519_key()
    checks = await check_gateway_key(
        CdpKey(stranger.name, stranger.private_key), gateway.base_url, trades=True, timeout_s=5
    )
    assert checks[0].status is Status.FAIL
    assert "13004" in checks[0].summary
    assert checks[0].fix
    assert [c.status for c in checks[1:]] == [Status.SKIP, Status.SKIP]


async def test_a_view_only_key_fails_the_scopes_of_a_trading_worker(
    gateway: GatewayEnv, register_key: Callable[..., TestKey]
) -> None:
    view_only = register_key(permissions={"view"})
    key = CdpKey(view_only.name, view_only.private_key)
    trading = await check_gateway_key(key, gateway.base_url, trades=True, timeout_s=5)
    assert trading[1].status is Status.FAIL
    assert "trade" in trading[1].fix.lower()
    dry_run = await check_gateway_key(key, gateway.base_url, trades=False, timeout_s=5)
    assert dry_run[1].status is Status.OK
