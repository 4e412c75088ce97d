"""`engine doctor`: is this key going to work, and if not, exactly what to change.

The checks run in the order that isolates a fault: where the key came from, whether it parses, whether the
tokens it makes have the right shape, the clock against the exchange's `/time`, a read-only call (accounts),
and only then its permissions (`/key_permissions`), judged for least privilege against the config. Each
failure carries a concrete fix for the pitfalls Coinbase users hit most: clock skew, a wrong path in the
`uri` claim, PEMs with escaped newlines, the wrong key type, a missing permission.

No output ever includes key material or a token: a check reports the key's short label, booleans and times.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import aiohttp
import orjson

from engine.errors import AuthDiagnosis, AuthError, ConfigError, EngineError, ExchangeError, KeyFormatError
from engine.ops.config import Config
from engine.ops.credentials import Credentials, key_label, read_credentials, read_exchange_credentials

if TYPE_CHECKING:
    from engine.auth import CdpKey

__all__ = ["Check", "Status", "check_gateway_key", "doctor_exit_code", "render", "run_doctor"]

# Beyond this the host clock is broken, not drifting: Exchange HMAC requests (30 s window) and any client that
# does not measure the offset will be refused. Below it the engine compensates, but NTP should be fixed.
CLOCK_FAIL_S = 30.0
CLOCK_WARN_S = 1.0
ACCOUNTS_PATH = "/api/v3/brokerage/accounts"
PORTAL = "https://portal.cdp.coinbase.com/access/api"
_CDP_NAME = re.compile(r"organizations/[^/\s]+/apiKeys/[^/\s]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX32 = re.compile(r"[0-9a-f]{32}")

FIX_CLOCK = (
    "sync this host's clock: `sudo timedatectl set-ntp true` (systemd) or run chrony/ntpd, then compare "
    "`date -u` with the exchange's time. The engine measures and applies the offset, but a clock this far "
    "off breaks every other client on the host, and token lifetimes are only 2 minutes."
)
FIX_URI = (
    "the token's uri claim must be '<METHOD> <host><path>': host without scheme, path without the query "
    "string, e.g. 'GET api.coinbase.com/api/v3/brokerage/accounts'. Set [exchange].base_url to scheme and "
    "host only (https://api.coinbase.com), and do not route through a proxy that rewrites the Host header."
)
FIX_ESCAPED = (
    "the private key is a PEM pasted with literal \\n sequences; put real newlines in it, or keep the "
    "portal's JSON file and point COINBASE_API_KEY_FILE (or [credentials].file) at it."
)
FIX_WRONG_TYPE = (
    "Advanced Trade needs a CDP API key (ECDSA or Ed25519) created at " + PORTAL + ": the file has 'name' "
    "(organizations/…/apiKeys/…) and 'privateKey'. Coinbase Exchange keys (key, secret, passphrase) and the "
    "retired Coinbase App v2 keys do not work here."
)
FIX_BAD_SIGNATURE = (
    "Coinbase does not accept this key: it was deleted, or the name and the private key come from two "
    f"different downloads. Create a key at {PORTAL}, download its JSON, and point [credentials] at it."
)
FIX_IP = (
    "the key's IP allowlist does not include this machine: add its public address (`curl -s "
    f"https://api.ipify.org`) to the key at {PORTAL}."
)
FIX_VIEW = f"edit the key at {PORTAL} and enable the View permission (every call needs it)."
FIX_TRADE = (
    f"this worker places orders: enable Trade on the key at {PORTAL}, or set [worker].dry_run = true to run "
    "without trading."
)
FIX_TRANSFER = (
    f"create a key without the Transfer permission at {PORTAL} and rotate to it (SIGHUP): a trading worker "
    "never moves funds, and a leaked key with Transfer can."
)
FIX_LEAST_TRADE = (
    f"this config never trades ([worker].dry_run = true): use a View-only key ({PORTAL}), so a leak cannot "
    "place orders."
)
FIX_NOT_TEXT = (
    "the key holds characters no Coinbase key has (an undecodable byte, non-ASCII, NUL or another control "
    "character), as a terminal, an editor or a shell's quoting leaves behind. Do not paste the key: download "
    f"its JSON again from {PORTAL} and point COINBASE_API_KEY_FILE (or [credentials].file) at the file."
)
FIX_KEY_FILE = (
    "point [credentials].file (or COINBASE_API_KEY_FILE) at the JSON file the CDP portal downloaded "
    f"({PORTAL}), unchanged: re-download it if it was edited or re-saved."
)
FIX_SOURCE = (
    "set COINBASE_API_KEY and COINBASE_API_SECRET, or COINBASE_API_KEY_FILE to the portal's JSON key file, "
    'or choose another [credentials].source ("env", "file" or "keyring") in the config.'
)
FIX_UNREACHABLE = "check [exchange].base_url (https://api.coinbase.com for Coinbase), DNS and outbound HTTPS."

FIX_EXCHANGE_SOURCE = (
    "set COINBASE_EXCHANGE_KEY, COINBASE_EXCHANGE_SECRET and COINBASE_EXCHANGE_PASSPHRASE, or point "
    "COINBASE_EXCHANGE_KEY_FILE (or [credentials].file) at a JSON file with key, secret and passphrase."
)
FIX_EXCHANGE_KEY = (
    "a Coinbase Exchange key is its key id, the base64 secret shown once when it was created, and the "
    "passphrase chosen then; a lost secret or passphrase cannot be shown again: create a new key."
)
FIX_PASSPHRASE = "the passphrase does not match the key: it is the one chosen when the key was created."  # noqa: S105

_AUTH_FIXES: dict[AuthDiagnosis, str] = {
    AuthDiagnosis.CLOCK_SKEW: FIX_CLOCK,
    AuthDiagnosis.EXPIRED_TOKEN: FIX_CLOCK,
    AuthDiagnosis.URI_MISMATCH: FIX_URI,
    AuthDiagnosis.MISSING_PERMISSION: FIX_VIEW,
    AuthDiagnosis.IP_NOT_ALLOWED: FIX_IP,
    AuthDiagnosis.WRONG_KEY_TYPE: FIX_WRONG_TYPE,
    AuthDiagnosis.BAD_SIGNATURE: FIX_BAD_SIGNATURE,
    AuthDiagnosis.UNKNOWN: FIX_BAD_SIGNATURE,
    AuthDiagnosis.BAD_PASSPHRASE: FIX_PASSPHRASE,
}


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    fix: str = ""


_KEY_LOADS = ("credentials", "key format")


def doctor_exit_code(checks: list[Check]) -> int:
    """2 when no key could be loaded (as `engine worker` exits then), 1 when a later check failed, else 0."""
    failed = {c.name for c in checks if c.status is Status.FAIL}
    if failed & set(_KEY_LOADS):
        return 2
    return 1 if failed else 0


async def run_doctor(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    gateway_url: str | None = None,
) -> list[Check]:
    """Run every check against `config`'s exchange, or against the derivatives gateway at `gateway_url`.

    Never raises for a bad key: that is a failed check."""
    if config.exchange.venue == "exchange" and gateway_url is None:
        return await _exchange_doctor(config, environ, timeout_s)
    checks: list[Check] = []
    try:
        credentials = await asyncio.to_thread(read_credentials, config.credentials, environ)
    except (ConfigError, KeyFormatError) as exc:
        fix = FIX_KEY_FILE if isinstance(exc, KeyFormatError) else FIX_SOURCE
        checks.append(Check("credentials", Status.FAIL, str(exc), fix))
        return _skip_rest(checks, "credentials")
    checks.append(
        Check("credentials", Status.OK, f"key {key_label(credentials.name)} from {credentials.origin}")
    )
    checks.extend(Check("credentials", Status.WARN, warning) for warning in credentials.warnings)

    format_check, key = _check_format(credentials)
    checks.append(format_check)
    if key is None:
        return _skip_rest(checks, "key format")
    try:
        if gateway_url is not None:
            checks.extend(
                await check_gateway_key(key, gateway_url, trades=config.trades, timeout_s=timeout_s)
            )
        else:
            checks.append(_check_token(key, config.exchange.base_url))
            checks.extend(await _check_exchange(key, config, timeout_s))
    finally:
        close = getattr(key, "close", None)
        if close is not None:
            close()
    return checks


_LATER = ("token", "clock", "read-only call", "permissions")


def _skip_rest(checks: list[Check], failed: str) -> list[Check]:
    for name in _LATER:
        if not any(c.name == name for c in checks):
            checks.append(Check(name, Status.SKIP, f"not run: {failed} failed"))
    return checks


def _is_key_text(text: str) -> bool:
    """Printable ASCII, and the line breaks of a PEM block: all a Coinbase key is ever written in."""
    return text.isascii() and all(c.isprintable() or c in "\t\r\n" for c in text)


def _format_fix(credentials: Credentials) -> str:
    """The concrete change for a key that did not load, from what the input looks like (never echoing it)."""
    name, secret = credentials.name, credentials.private_key.strip()
    if not _is_key_text(name) or not _is_key_text(secret):
        return FIX_NOT_TEXT
    if _HEX32.fullmatch(name) or (not _CDP_NAME.fullmatch(name) and not _UUID.fullmatch(name)):
        return FIX_WRONG_TYPE
    if "BEGIN RSA PRIVATE KEY" in secret or "BEGIN PUBLIC KEY" in secret or "BEGIN OPENSSH" in secret:
        return FIX_WRONG_TYPE
    if "\\n" in secret or "\\r" in secret:
        return FIX_ESCAPED
    if secret.startswith(('"', "'")) or secret.endswith(('"', "'")):
        return "remove the quotes around the private key: they became part of the value."
    return f"the private key does not parse as a CDP key. Download the key's JSON again from {PORTAL}."


def _check_format(credentials: Credentials) -> tuple[Check, CdpKey | None]:
    try:
        key = credentials.signing_key()
    except KeyFormatError as exc:
        return Check("key format", Status.FAIL, str(exc), _format_fix(credentials)), None
    algorithm = getattr(key, "algorithm", "")
    summary = f"{algorithm} key {key_label(credentials.name)} loads".replace("  ", " ").strip()
    if not _CDP_NAME.fullmatch(credentials.name) and not _UUID.fullmatch(credentials.name):
        return Check("key format", Status.WARN, summary + ", but its name is not organizations/…/apiKeys/…",
                     "use the key name exactly as the portal's JSON gives it."), key  # fmt: skip
    if credentials.has_escaped_newlines:
        return Check(
            "key format", Status.WARN, summary + " (its PEM had literal \\n escapes)", FIX_ESCAPED
        ), key
    return Check("key format", Status.OK, summary), key


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: Any = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(decoded, dict):
        raise ValueError("claims are not an object")
    return decoded


def _check_token(key: CdpKey, base_url: str) -> Check:
    """The token's claims as Coinbase reads them, checked locally: catches a wrong uri before the exchange."""
    host = base_url.split("://", 1)[-1].rstrip("/")
    expected = f"GET {host}{ACCOUNTS_PATH}"
    try:
        claims = _claims(key.rest_jwt("GET", ACCOUNTS_PATH, host=host))
    except (EngineError, ValueError, IndexError) as exc:
        return Check("token", Status.FAIL, f"could not make a token: {type(exc).__name__}", FIX_BAD_SIGNATURE)
    uri = claims.get("uri")
    if uri != expected:
        return Check("token", Status.FAIL, f"uri claim is {uri!r}, expected {expected!r}", FIX_URI)
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float) or not 0 < exp - nbf <= 120:
        return Check("token", Status.FAIL, "nbf/exp do not give a lifetime of at most 2 minutes", FIX_CLOCK)
    if claims.get("sub") != key.name:
        return Check("token", Status.FAIL, "sub claim does not name the key", FIX_BAD_SIGNATURE)
    return Check("token", Status.OK, f"uri {uri!r}, lifetime {exp - nbf:.0f} s")


async def _check_exchange(key: CdpKey, config: Config, timeout_s: float) -> list[Check]:
    from engine.net.retry import RetryPolicy
    from engine.venues.advanced.client import Client

    checks: list[Check] = []
    client = Client(
        key,
        config.exchange.base_url,
        timeout_s=min(timeout_s, config.exchange.request_timeout_s),
        retry=RetryPolicy.never(),
        sync_clock=False,
        premint_depth=0,
    )
    async with client:
        try:
            sample = await client.clock.measure()
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
            checks.append(Check("clock", Status.FAIL, f"GET /time failed: {_describe(exc)}", FIX_UNREACHABLE))
            return _skip_rest(checks, "clock")
        offset = sample.offset_s
        line = (
            f"offset {offset:+.3f} s to the exchange's /time (round trip {sample.round_trip_s * 1e3:.0f} ms)"
        )
        if abs(offset) >= CLOCK_FAIL_S:
            checks.append(Check("clock", Status.FAIL, line, FIX_CLOCK))
        elif abs(offset) >= CLOCK_WARN_S:
            checks.append(Check("clock", Status.WARN, line + "; the engine compensates", FIX_CLOCK))
        else:
            checks.append(Check("clock", Status.OK, line))

        started = time.perf_counter()
        try:
            page = await client.accounts(limit=1)
        except AuthError as exc:
            fix = _AUTH_FIXES.get(exc.diagnosis, FIX_BAD_SIGNATURE)
            summary = f"GET /accounts refused ({exc.status}): {exc.diagnosis.value}"
            checks.append(Check("read-only call", Status.FAIL, summary, fix))
            return _skip_rest(checks, "read-only call")
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            checks.append(
                Check("read-only call", Status.FAIL, f"GET /accounts: {_describe(exc)}", FIX_UNREACHABLE)
            )
            return _skip_rest(checks, "read-only call")
        elapsed_ms = (time.perf_counter() - started) * 1e3
        checks.append(
            Check(
                "read-only call",
                Status.OK,
                f"GET /accounts answered ({len(page.items)} shown, {elapsed_ms:.0f} ms)",
            )
        )

        try:
            permissions = await client.key_permissions()
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            fix = _AUTH_FIXES.get(exc.diagnosis, FIX_VIEW) if isinstance(exc, AuthError) else FIX_UNREACHABLE
            checks.append(Check("permissions", Status.FAIL, f"GET /key_permissions: {_describe(exc)}", fix))
            return checks
    granted = [name for name, on in (("view", permissions.can_view), ("trade", permissions.can_trade),
                                     ("transfer", permissions.can_transfer)) if on]  # fmt: skip
    summary = f"key has {', '.join(granted) or 'no permissions'}"
    problems: list[Check] = []
    if not permissions.can_view:
        problems.append(Check("permissions", Status.FAIL, summary + "; view is missing", FIX_VIEW))
    if config.trades and not permissions.can_trade:
        problems.append(Check("permissions", Status.FAIL, summary + "; trade is missing", FIX_TRADE))
    if permissions.can_transfer:
        problems.append(Check("permissions", Status.WARN, summary + "; transfer is enabled", FIX_TRANSFER))
    if not config.trades and permissions.can_trade:
        problems.append(Check("permissions", Status.WARN, summary + "; trade is enabled", FIX_LEAST_TRADE))
    checks.extend(problems or [Check("permissions", Status.OK, summary + " (least privilege)")])
    return checks


async def _exchange_doctor(
    config: Config, environ: Mapping[str, str] | None, timeout_s: float
) -> list[Check]:
    """The checks for a Coinbase Exchange (HMAC) key: where it came from, that it parses, the clock against
    `/time`, a signed read-only call (`/accounts`). Exchange has no call that lists a key's permissions."""
    from engine.net.retry import RetryPolicy
    from engine.venues.advanced.client import Client

    checks: list[Check] = []
    try:
        credentials = await asyncio.to_thread(read_exchange_credentials, config.credentials, environ)
    except (ConfigError, KeyFormatError) as exc:
        fix = FIX_EXCHANGE_KEY if isinstance(exc, KeyFormatError) else FIX_EXCHANGE_SOURCE
        checks.append(Check("credentials", Status.FAIL, str(exc), fix))
        return _skip_rest(checks, "credentials")
    label = key_label(credentials.name)
    checks.append(Check("credentials", Status.OK, f"Exchange key {label} from {credentials.origin}"))
    checks.extend(Check("credentials", Status.WARN, warning) for warning in credentials.warnings)
    try:
        key = credentials.signing_key()
    except KeyFormatError as exc:
        checks.append(Check("key format", Status.FAIL, str(exc), FIX_EXCHANGE_KEY))
        return _skip_rest(checks, "key format")
    checks.append(Check("key format", Status.OK, f"Exchange key {label} loads (HMAC-SHA256, passphrase)"))
    checks.append(Check("token", Status.SKIP, "an Exchange key signs each request (HMAC): no token"))
    client = Client(
        key,
        config.exchange.base_url,
        timeout_s=min(timeout_s, config.exchange.request_timeout_s),
        retry=RetryPolicy.never(),
        sync_clock=False,
    )
    async with client:
        try:
            sample = await client.clock.measure()
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
            checks.append(Check("clock", Status.FAIL, f"GET /time failed: {_describe(exc)}", FIX_UNREACHABLE))
            return _skip_rest(checks, "clock")
        line = f"offset {sample.offset_s:+.3f} s to the exchange's /time (Exchange refuses beyond 30 s)"
        if abs(sample.offset_s) >= CLOCK_FAIL_S:
            checks.append(Check("clock", Status.FAIL, line, FIX_CLOCK))
        elif abs(sample.offset_s) >= CLOCK_WARN_S:
            checks.append(Check("clock", Status.WARN, line + "; the engine compensates", FIX_CLOCK))
        else:
            checks.append(Check("clock", Status.OK, line))
        try:
            accounts = await client.exchange.accounts()
        except AuthError as exc:
            fix = _AUTH_FIXES.get(exc.diagnosis, FIX_EXCHANGE_KEY)
            summary = f"GET /accounts refused ({exc.status}): {exc.diagnosis.value}"
            checks.append(Check("read-only call", Status.FAIL, summary, fix))
            return _skip_rest(checks, "read-only call")
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            checks.append(
                Check("read-only call", Status.FAIL, f"GET /accounts: {_describe(exc)}", FIX_UNREACHABLE)
            )
            return _skip_rest(checks, "read-only call")
    checks.append(Check("read-only call", Status.OK, f"GET /accounts answered ({len(accounts)} accounts)"))
    checks.append(
        Check(
            "permissions",
            Status.SKIP,
            "Coinbase Exchange has no call listing a key's permissions: check view/trade (and no transfer) "
            "where the key was made",
        )
    )
    return checks


FIX_GATEWAY_UNREACHABLE = (
    "check --gateway-url (https://drb.coinbase.com for Coinbase), DNS and outbound HTTPS."
)
FIX_GATEWAY_TRADE = (
    f"this worker places orders: enable Trade on the key at {PORTAL} (the gateway grants rat#trade), or set "
    "[worker].dry_run = true."
)
_GATEWAY_TRADE = ("rat#trade", "wallet:buys:create", "trade:read_write")
_GATEWAY_TRANSFER = ("rat#transfer", "wallet:transactions:send", "wallet:withdrawals:create")


async def check_gateway_key(key: CdpKey, gateway_url: str, *, trades: bool, timeout_s: float) -> list[Check]:
    """The derivatives gateway's view of the key: the token exchange (`public/auth`), the scopes it granted
    (judged for least privilege as on Advanced Trade), then a read-only call. No token is ever printed."""
    from engine.venues.derivatives.http import GatewayHttpClient

    checks: list[Check] = []
    async with GatewayHttpClient(key, gateway_url, timeout_s=timeout_s) as client:
        try:
            await client.access_token()
        except AuthError as exc:
            fix = exc.hint or _AUTH_FIXES.get(exc.diagnosis, FIX_BAD_SIGNATURE)
            summary = f"public/auth refused [{exc.code}]: {exc.diagnosis.value}"
            checks.append(Check("token exchange", Status.FAIL, summary, fix))
            return checks + [
                Check(name, Status.SKIP, "not run: token exchange failed")
                for name in ("scopes", "read-only call")
            ]
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            checks.append(
                Check(
                    "token exchange", Status.FAIL, f"public/auth: {_describe(exc)}", FIX_GATEWAY_UNREACHABLE
                )
            )
            return checks + [
                Check(name, Status.SKIP, "not run: token exchange failed")
                for name in ("scopes", "read-only call")
            ]
        checks.append(
            Check("token exchange", Status.OK, "public/auth (coinbase_cdp) granted an access token")
        )
        scopes = client.scope.split()
        summary = f"scopes {' '.join(scopes) or '(none reported)'}"
        can_trade = any(scope in scopes for scope in _GATEWAY_TRADE)
        can_transfer = any(scope in scopes for scope in _GATEWAY_TRANSFER)
        if not scopes:
            checks.append(
                Check("scopes", Status.WARN, summary, "the gateway said nothing about the key's scopes")
            )
        elif trades and not can_trade:
            checks.append(Check("scopes", Status.FAIL, summary + "; trade is missing", FIX_GATEWAY_TRADE))
        elif can_transfer:
            checks.append(Check("scopes", Status.WARN, summary + "; transfer is granted", FIX_TRANSFER))
        elif not trades and can_trade:
            checks.append(Check("scopes", Status.WARN, summary + "; trade is granted", FIX_LEAST_TRADE))
        else:
            checks.append(Check("scopes", Status.OK, summary))
        try:
            summary_usdc = await client.get_account_summary("USDC")
        except AuthError as exc:
            checks.append(
                Check(
                    "read-only call",
                    Status.FAIL,
                    f"private/get_account_summary refused: {exc.diagnosis.value}",
                    exc.hint or FIX_VIEW,
                )
            )
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            checks.append(
                Check(
                    "read-only call",
                    Status.FAIL,
                    f"private/get_account_summary: {_describe(exc)}",
                    FIX_GATEWAY_UNREACHABLE,
                )
            )
        else:
            checks.append(
                Check(
                    "read-only call",
                    Status.OK,
                    f"private/get_account_summary answered (USDC equity {summary_usdc.equity})",
                )
            )
    return checks


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}" + (f" {status}" if status else "") + (f": {text}" if text else "")


def render(checks: list[Check], stream: IO[str], *, header: str = "") -> None:
    """Print one line per check, and its fix beneath each failure or warning."""
    if header:
        print(header, file=stream)
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        print(f"  {check.status.value:<4}  {check.name:<{width}}  {check.summary}", file=stream)
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            print(f"  {'':<4}  {'':<{width}}  fix: {check.fix}", file=stream)
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    verdict = "the key is ready" if not failed else f"{failed} check(s) failed"
    print(f"{verdict}" + (f", {warned} warning(s)" if warned else ""), file=stream)
