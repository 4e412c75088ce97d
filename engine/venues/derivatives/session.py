"""The trading session: one authenticated WebSocket to the gateway's trading host, for orders and user.*.

    async with TradingSession(CdpKey.from_json_file("key.json")) as session:
        result = await session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal("50000"),
                                   post_only=True, label="mm-1")

On every connection: `public/auth` with `grant_type: coinbase_cdp` and a CDP JWT without a `uri` claim,
minted by the Rust signer (the socket is the credential: no token is kept or sent again); then
`public/set_heartbeat`, `private/enable_cancel_on_disconnect` (unless configured off), and the user channels
subscribed before. The session authenticates again on the same socket at 80% of `expires_in`; if that
fails it drops the connection and starts over. Requests in flight when a connection drops fail with
`RequestLost` and are never re-sent (https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/
guides/derivatives/technical).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import aiohttp
import msgspec

from engine._signer import CdpKey
from engine.errors import GatewayAuthError
from engine.venues.derivatives.codec import decode_result, encode_request
from engine.venues.derivatives.connection import GatewaySocket, SessionConfig
from engine.venues.derivatives.credits import GatewayCredits
from engine.venues.derivatives.methods import GatewayMethods
from engine.venues.derivatives.types import AccountSummary, AuthResult, Order, UserChanges, UserTrade

__all__ = ["TRADING_WS_URL", "TradingSession"]

log = logging.getLogger("engine.venues.derivatives")

TRADING_WS_URL = "wss://drb.coinbase.com/ws/api/v2"
T = TypeVar("T")


class TradingSession(GatewaySocket, GatewayMethods):
    """Orders, account state and user channels over one authenticated socket. See the module docstring.

    Args:
        key: the CDP key (ES256 or Ed25519); its `clock_offset` is applied to the JWT's times.
        url: the trading host's WebSocket (the simulator's `ws://127.0.0.1:PORT/ws/api/v2` in tests).
        config: timeouts, heartbeat, cancel-on-disconnect, reconnect backoff.
        credits: the key's credit pools (default: local ones with the gateway's defaults); pass
            `GatewayCredits.shared(...)` when several workers trade one key.
        session: an aiohttp session to connect through (default: one of its own).
    """

    _subscribe_method = "private/subscribe"
    _unsubscribe_method = "private/unsubscribe"

    def __init__(
        self,
        key: CdpKey,
        url: str = TRADING_WS_URL,
        *,
        config: SessionConfig | None = None,
        credits: GatewayCredits | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(
            url,
            config=config,
            credits=credits if credits is not None else GatewayCredits(key.name),
            session=session,
            ssl_context=ssl_context,
        )
        self.key = key
        self.scope = ""  # the scopes the gateway granted at the last public/auth
        self.expires_in = 0.0
        self._reauth_timer: asyncio.TimerHandle | None = None

    def _subscription_hint(self) -> str:
        return "the trading host serves user.* channels; subscribe to market data with MarketStreams"

    async def _handshake(self) -> None:
        await self._authenticate()
        config = self.config
        if config.heartbeat_interval_s is not None:
            await self.request(
                "public/set_heartbeat", {"interval": config.heartbeat_interval_s}, handshake=True
            )
        if config.cancel_on_disconnect:
            await self.request(
                "private/enable_cancel_on_disconnect",
                {"scope": config.cancel_on_disconnect_scope},
                handshake=True,
            )
        await self._resubscribe()

    async def _authenticate(self) -> None:
        params = {"grant_type": "coinbase_cdp", "token": self.key.ws_jwt()}
        try:
            raw = await self.request("public/auth", params, handshake=True)
        except GatewayAuthError:
            raise
        auth: AuthResult = decode_result(raw, AuthResult)
        del raw  # holds the access token's bytes; the socket itself is the credential from here on
        self.scope = auth.scope
        self.expires_in = auth.expires_in
        self._schedule_reauth(auth.expires_in)

    def _schedule_reauth(self, expires_in: float) -> None:
        if self._reauth_timer is not None:
            self._reauth_timer.cancel()
            self._reauth_timer = None
        if expires_in > 0 and self._loop is not None:
            self._reauth_timer = self._loop.call_later(
                expires_in * self.config.reauth_ratio, self._spawn_reauth, self._ws
            )

    def _spawn_reauth(self, ws: aiohttp.ClientWebSocketResponse | None) -> None:
        self._reauth_timer = None
        if ws is not None and ws is self._ws and not ws.closed:
            self._spawn(self._reauth(ws))

    async def _reauth(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            await self._authenticate()
        except Exception as exc:
            if ws is self._ws and not ws.closed:
                log.error("gateway %s: re-authentication failed (%s); reconnecting", self.url, exc)
                await ws.close()
            return
        self.stats.reauths += 1

    def _connection_ended(self, reason: str, was_ready: bool) -> None:
        if self._reauth_timer is not None:
            self._reauth_timer.cancel()
            self._reauth_timer = None
        super()._connection_ended(reason, was_ready)

    async def logout(self) -> None:
        """`private/logout`: the gateway closes the socket (no reply) without firing cancel-on-disconnect."""
        ws = self._ws
        self._closing = True
        if ws is not None and not ws.closed:
            request_id = next(self._ids)
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await ws.send_frame(encode_request(request_id, "private/logout", {}), aiohttp.WSMsgType.TEXT)
            supervisor = self._supervisor
            if supervisor is not None:  # it returns once the gateway has closed the socket
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(supervisor), 5.0)
        await self.close()

    # -- user channels ------------------------------------------------------------------------------------

    async def subscribe_orders(
        self, callback: Callable[[Order], Any], scope: str = "future.USDC", interval: str = "raw"
    ) -> None:
        """`user.orders.{scope}.{interval}`: `scope` is an instrument or `{kind}.{currency}`."""
        await self.subscribe([f"user.orders.{scope}.{interval}"], _each(callback, Order))

    async def subscribe_trades(
        self, callback: Callable[[UserTrade], Any], scope: str = "future.USDC", interval: str = "raw"
    ) -> None:
        """`user.trades.{scope}.{interval}`: our fills, one callback per fill."""
        await self.subscribe([f"user.trades.{scope}.{interval}"], _each(callback, UserTrade))

    async def subscribe_changes(
        self, callback: Callable[[UserChanges], Any], scope: str = "future.USDC", interval: str = "raw"
    ) -> None:
        """`user.changes.{scope}.{interval}`: orders, fills and positions that one event changed, together."""
        await self.subscribe([f"user.changes.{scope}.{interval}"], _one(callback, UserChanges))

    async def subscribe_portfolio(
        self, callback: Callable[[AccountSummary], Any], currency: str = "USDC"
    ) -> None:
        """`user.portfolio.{currency}`: balances and margin after each change."""
        await self.subscribe([f"user.portfolio.{currency.lower()}"], _one(callback, AccountSummary))

    async def subscribe_channels(
        self, channels: Iterable[str], callback: Callable[[str, Any], Any]
    ) -> list[str]:
        """Any private channels; `callback(channel, data)` gets plain Python values (numbers as Decimal)."""
        decoder = msgspec.json.Decoder(float_hook=_decimal)
        return await self.subscribe(channels, lambda channel, raw: callback(channel, decoder.decode(raw)))


def _decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


def _each(callback: Callable[[T], Any], item_type: type[T]) -> Callable[[str, msgspec.Raw], None]:
    """The channel sends a list (or, for some, one object): one callback per item, decoded as `item_type`."""
    many: msgspec.json.Decoder[list[T] | T] = msgspec.json.Decoder(list[item_type] | item_type)  # type: ignore[valid-type]

    def deliver(_channel: str, raw: msgspec.Raw) -> None:
        decoded = many.decode(raw)
        for item in decoded if isinstance(decoded, list) else (decoded,):
            callback(item)

    return deliver


def _one(callback: Callable[[T], Any], item_type: type[T]) -> Callable[[str, msgspec.Raw], None]:
    decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(item_type)

    def deliver(_channel: str, raw: msgspec.Raw) -> None:
        callback(decoder.decode(raw))

    return deliver
