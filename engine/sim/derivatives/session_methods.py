"""Session methods: `public/auth` (a CDP JWT for an access token), heartbeats, subscriptions, cancel-on-
disconnect and logout. All but auth are served on a WebSocket only."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import orjson

from engine.sim.auth import TRADE, VIEW, AuthFailure
from engine.sim.derivatives.channels import accepts_private, accepts_public
from engine.sim.derivatives.dispatcher import STREAMS, TRADING, Caller, MethodTable
from engine.sim.derivatives.rpc import INVALID_CREDENTIALS, Params, RpcError, invalid_param

if TYPE_CHECKING:
    from engine.sim.derivatives.gateway import DerivativesGateway

GRANT_TYPES = frozenset({"coinbase_cdp", "coinbase_oauth2"})
_SCOPES = {VIEW: "wallet:user:read wallet:accounts:read", TRADE: "rat#trade wallet:buys:create"}
_WS = frozenset({TRADING, STREAMS})


def _has_uri_claim(token: str) -> bool:
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return False
    return isinstance(claims, dict) and ("uri" in claims or "uris" in claims)


def register(table: MethodTable, gw: DerivativesGateway) -> None:
    config = gw.config

    def auth(params: Params, caller: Caller) -> Any:
        grant_type = params.string("grant_type", choices=GRANT_TYPES)
        if grant_type != "coinbase_cdp":
            raise RpcError(INVALID_CREDENTIALS, {"reason": "the simulator accepts CDP keys only"})
        token = params.string("token", max_length=4096)
        try:
            key = gw.keys.verify_jwt(token, None)
            gw.keys.check_access(key, None, caller.remote)
        except AuthFailure as failure:
            gw.auth_failures[failure.reason] = gw.auth_failures.get(failure.reason, 0) + 1
            raise RpcError(INVALID_CREDENTIALS, {"reason": failure.reason}) from None
        if not config.accept_jwt_uri and _has_uri_claim(token):
            gw.auth_failures["uri_claim"] = gw.auth_failures.get("uri_claim", 0) + 1
            raise RpcError(INVALID_CREDENTIALS, {"reason": "uri_claim"})
        scopes = [_SCOPES[p] for p in (VIEW, TRADE) if p in key.permissions]
        if not scopes:
            raise RpcError(INVALID_CREDENTIALS, {"reason": "the key has neither view nor trade permission"})
        scope = " ".join(scopes)
        access, refresh, _grant = gw.tokens.issue(key.name, scope, gw.clock.now())
        if caller.connection is not None:
            previous = caller.connection.key
            caller.connection.key = key
            if previous is None and gw.cod_account_scope.get(key.name):
                caller.connection.cod_enabled = True
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(gw.tokens.lifetime_s),
            "scope": scope,
            "token_type": "bearer",
        }

    def hello(params: Params, caller: Caller) -> Any:
        params.optional_string("client_name")
        params.optional_string("client_version")
        return {"version": "1.2.26"}

    def set_heartbeat(params: Params, caller: Caller) -> Any:
        interval = params.required_decimal("interval")
        if interval < config.heartbeat_min_interval_s:
            raise invalid_param("interval", f"at least {config.heartbeat_min_interval_s:g} seconds")
        assert caller.connection is not None
        caller.connection.set_heartbeat(float(interval))
        return "ok"

    def disable_heartbeat(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        caller.connection.set_heartbeat(None)
        return "ok"

    def subscribe(params: Params, caller: Caller) -> Any:
        connection = caller.connection
        assert connection is not None
        channels = params.string_list("channels")
        if connection.kind == STREAMS:
            index_names = [i.spec.index_name for i in gw.instruments.values()]
            accepted = [
                c
                for c in channels
                if accepts_public(c, gw.instruments, index_names, config.public_raw_channels)
            ]
        else:
            accepted = [c for c in channels if accepts_private(c, gw.instruments)]
        accepted = list(dict.fromkeys(accepted))
        fresh = [c for c in accepted if c not in connection.channels]
        connection.channels.update(accepted)
        gw.after_subscribe(connection, fresh)
        return accepted

    def unsubscribe(params: Params, caller: Caller) -> Any:
        connection = caller.connection
        assert connection is not None
        channels = params.string_list("channels")
        removed = [c for c in channels if c in connection.channels]
        connection.channels.difference_update(removed)
        return removed

    def unsubscribe_all(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        caller.connection.channels.clear()
        return "ok"

    def _scope(params: Params) -> str:
        return params.string("scope", "connection", choices=frozenset({"connection", "account"}))

    def enable_cod(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        assert caller.key is not None
        if _scope(params) == "account":
            gw.cod_account_scope[caller.key.name] = True
        caller.connection.cod_enabled = True
        return "ok"

    def disable_cod(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        assert caller.key is not None
        if _scope(params) == "account":
            gw.cod_account_scope[caller.key.name] = False
        caller.connection.cod_enabled = False
        return "ok"

    def get_cod(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        assert caller.key is not None
        scope = _scope(params)
        enabled = (
            gw.cod_account_scope.get(caller.key.name, False)
            if scope == "account"
            else caller.connection.cod_enabled
        )
        return {"scope": scope, "enabled": enabled}

    def logout(params: Params, caller: Caller) -> Any:
        assert caller.connection is not None
        assert caller.key is not None
        if params.boolean("invalidate_token", True):
            gw.tokens.revoke_key(caller.key.name)
        caller.connection.logged_out = True
        caller.connection.close_after_pending(1000, b"logout")
        return None  # no reply: the socket closes

    table.public("public/auth", auth)
    table.public("public/hello", hello, _WS)
    table.public("public/set_heartbeat", set_heartbeat, _WS)
    table.public("public/disable_heartbeat", disable_heartbeat, _WS)
    table.add("public/subscribe", subscribe, None, transports=frozenset({STREAMS}), subscribe=True)
    table.add("public/unsubscribe", unsubscribe, None, transports=frozenset({STREAMS}))
    table.add("public/unsubscribe_all", unsubscribe_all, None, transports=frozenset({STREAMS}))
    ws = frozenset({TRADING})
    table.add("private/subscribe", subscribe, VIEW, transports=ws, subscribe=True)
    table.add("private/unsubscribe", unsubscribe, VIEW, transports=ws)
    table.add("private/unsubscribe_all", unsubscribe_all, VIEW, transports=ws)
    table.add("private/enable_cancel_on_disconnect", enable_cod, VIEW, transports=ws)
    table.add("private/disable_cancel_on_disconnect", disable_cod, VIEW, transports=ws)
    table.add("private/get_cancel_on_disconnect", get_cod, VIEW, transports=ws)
    table.add("private/logout", logout, VIEW, transports=ws)
