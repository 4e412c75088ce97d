"""Turn a 401/403 into an `AuthError` that says why and what to do.

Coinbase's 401 body is often the bare word `Unauthorized`, so the body alone rarely tells. The pipeline
gathers what it can (did a fresh clock measurement move? does the key authenticate at `/key_permissions`, and
with which permissions?) and this module weighs it. Pure functions: no I/O, easy to test, and no secret
can get in, since nothing here is given any.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import AuthDiagnosis, AuthError
from engine.net.wire import KeyPermissions

__all__ = ["AuthContext", "diagnose"]

_HINTS: dict[AuthDiagnosis, str] = {
    AuthDiagnosis.CLOCK_SKEW: (
        "the exchange judged the request's time outside its window; the client re-measured its clock offset "
        "and retried once. Keep the host clock NTP-synced."
    ),
    AuthDiagnosis.EXPIRED_TOKEN: (
        "the token had expired on arrival (tokens live 2 minutes from nbf): a request queued too long, or "
        "the local clock jumped."
    ),
    AuthDiagnosis.URI_MISMATCH: (
        "the token's uri claim did not match the request: it must be '<METHOD> <host[:port]><path>' with "
        "the host exactly as connected, no scheme and no query string (a proxy rewriting the host breaks it)."
    ),
    AuthDiagnosis.MISSING_PERMISSION: (
        "the key authenticates but lacks the permission this request needs; enable it for the key in the "
        "CDP portal (or use a key created with it)."
    ),
    AuthDiagnosis.IP_NOT_ALLOWED: (
        "the key is restricted to an IP allowlist that does not include this machine's public address; "
        "add it in the CDP portal."
    ),
    AuthDiagnosis.WRONG_KEY_TYPE: (
        "this key type does not work with this API: CDP keys (JWT) are for api.coinbase.com (Advanced "
        "Trade); Exchange keys (key, secret, passphrase) are for api.exchange.coinbase.com."
    ),
    AuthDiagnosis.BAD_SIGNATURE: (
        "the signature did not verify: the private key does not belong to this key name, or the Exchange "
        "secret/passphrase is wrong, or the key was deleted."
    ),
    AuthDiagnosis.BAD_PASSPHRASE: (
        "the Exchange refused the key's passphrase: it is the one chosen when the key was created, separate "
        "from the secret; Coinbase cannot show it again, so a lost passphrase means a new key."
    ),
    AuthDiagnosis.UNKNOWN: (
        "usual causes: clock skew, a wrong or deleted key, missing permissions, an IP allowlist, or a key of "
        "the wrong type for this API."
    ),
}

_TEXT_CLUES: tuple[tuple[tuple[str, ...], AuthDiagnosis], ...] = (
    (
        ("timestamp expired", "clock skew", "not yet valid", "nbf", "request timestamp"),
        AuthDiagnosis.CLOCK_SKEW,
    ),
    (("expired",), AuthDiagnosis.EXPIRED_TOKEN),
    (("uri",), AuthDiagnosis.URI_MISMATCH),
    (
        ("ip address", "ip not", "allowlist", "whitelist", "not allowed from", "source ip"),
        AuthDiagnosis.IP_NOT_ALLOWED,
    ),
    (("missing required scopes", "permission", "scope", "forbidden"), AuthDiagnosis.MISSING_PERMISSION),
    (("key type", "wrong key", "invalid api key type"), AuthDiagnosis.WRONG_KEY_TYPE),
    (("passphrase",), AuthDiagnosis.BAD_PASSPHRASE),
    (
        ("signature", "invalid api key", "unknown key", "key not found"),
        AuthDiagnosis.BAD_SIGNATURE,
    ),
)


@dataclass(frozen=True, slots=True)
class AuthContext:
    """What the pipeline knows about a refused request. `detail` is the exchange's (short) error text."""

    method: str
    path: str
    status: int
    detail: str
    key_kind: str  # "cdp" or "exchange"
    host: str
    clock_moved_s: float | None = None  # how far a re-measured offset moved, if it was re-measured
    permissions: KeyPermissions | None = None  # from /key_permissions, when the key could still read it
    probe_refused: bool = False  # /key_permissions was refused too: the key itself is not accepted


def _wrong_key_type(ctx: AuthContext) -> bool:
    host = ctx.host.split(":")[0]
    if ctx.key_kind == "exchange":
        return host == "api.coinbase.com"
    return host.endswith("exchange.coinbase.com")


def _needed_permission(method: str, path: str) -> str:
    if "/orders" in path or "/cfm/sweeps" in path or "/intraday/margin_setting" in path:
        return "trade" if method != "GET" else "view"
    return "view"


def classify(ctx: AuthContext) -> AuthDiagnosis:
    text = ctx.detail.lower()
    for clues, diagnosis in _TEXT_CLUES:
        if any(clue in text for clue in clues):
            return diagnosis
    if ctx.clock_moved_s is not None and abs(ctx.clock_moved_s) >= 1.0:
        return AuthDiagnosis.CLOCK_SKEW
    if _wrong_key_type(ctx):
        return AuthDiagnosis.WRONG_KEY_TYPE
    if ctx.permissions is not None:
        needed = _needed_permission(ctx.method, ctx.path)
        has = ctx.permissions.can_trade if needed == "trade" else ctx.permissions.can_view
        if not has or ctx.status == 403:
            return AuthDiagnosis.MISSING_PERMISSION
        # The key signs fine elsewhere and has the permission: what differs is this request's uri.
        return AuthDiagnosis.URI_MISMATCH
    if ctx.status == 403:
        return AuthDiagnosis.MISSING_PERMISSION
    if ctx.probe_refused:
        return AuthDiagnosis.BAD_SIGNATURE
    return AuthDiagnosis.UNKNOWN


def diagnose(ctx: AuthContext) -> AuthError:
    diagnosis = classify(ctx)
    hint = _HINTS[diagnosis]
    if diagnosis is AuthDiagnosis.MISSING_PERMISSION:
        needed = _needed_permission(ctx.method, ctx.path)
        hint = f"needs the '{needed}' permission: {hint}"
        if ctx.permissions is not None:
            p = ctx.permissions
            hint += f" The key has can_view={p.can_view}, can_trade={p.can_trade}."
    if diagnosis is AuthDiagnosis.CLOCK_SKEW and ctx.clock_moved_s is not None:
        hint += f" The offset moved {ctx.clock_moved_s:+.2f}s when re-measured."
    detail = ctx.detail.strip()[:200] or "no detail"
    message = f"{ctx.method} {ctx.path} refused with {ctx.status} ({detail}): {diagnosis.value}; {hint}"
    return AuthError(message, diagnosis=diagnosis, hint=hint, status=ctx.status, code=detail[:64])
