"""The gateway's session tokens: `public/auth` trades a verified CDP JWT for an opaque access token (and a
refresh token) that expire; private HTTP calls present the access token as a Bearer header.

Tokens are random and mean nothing outside this store: a token the store never issued, one past its expiry,
and one issued to a key since removed are all the same refusal to a caller (13009).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from engine.sim.derivatives.rpc import UNAUTHORIZED, RpcError


@dataclass(frozen=True, slots=True)
class Grant:
    key_name: str
    scope: str
    expires_at: float


class TokenStore:
    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}

    def issue(self, key_name: str, scope: str, now: float) -> tuple[str, str, Grant]:
        """(access_token, refresh_token, grant); expired tokens are swept here, so memory stays bounded."""
        self._sweep(now)
        grant = Grant(key_name, scope, now + self.lifetime_s)
        access = secrets.token_urlsafe(24)
        refresh = secrets.token_urlsafe(24)
        self._access[access] = grant
        self._refresh[refresh] = grant
        return access, refresh, grant

    def verify(self, access_token: str, now: float) -> Grant:
        grant = self._access.get(access_token)
        if grant is None:
            raise RpcError(UNAUTHORIZED, {"reason": "invalid_token"})
        if grant.expires_at <= now:
            del self._access[access_token]
            raise RpcError(UNAUTHORIZED, {"reason": "token_expired"})
        return grant

    def revoke_key(self, key_name: str) -> None:
        for table in (self._access, self._refresh):
            for token in [t for t, g in table.items() if g.key_name == key_name]:
                del table[token]

    def _sweep(self, now: float) -> None:
        if len(self._access) < 1024:
            return
        for table in (self._access, self._refresh):
            for token in [t for t, g in table.items() if g.expires_at <= now]:
                del table[token]
