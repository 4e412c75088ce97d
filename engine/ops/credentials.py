"""Where the worker's API key comes from: the environment, a JSON key file, or the OS keyring.

Advanced Trade takes a CDP key (`Credentials`); Coinbase Exchange an HMAC key with its passphrase
(`ExchangeCredentials`: `COINBASE_EXCHANGE_KEY`, `COINBASE_EXCHANGE_SECRET`, `COINBASE_EXCHANGE_PASSPHRASE`,
or `COINBASE_EXCHANGE_KEY_FILE` / a file / a keyring entry holding `{"key", "secret", "passphrase"}`).

Reading is synchronous file/keyring I/O: callers on the event loop run `read_credentials` in a thread
(`await asyncio.to_thread(...)`), as the worker does on SIGHUP.

`Credentials` holds the key text only until it is turned into a signing key (`engine.auth.CdpKey`), and
never shows it: its repr names the key and where it came from, nothing more. Every secret read here is also
handed to `engine.ops.logs.register_secret`, so the log redaction filter can strip it should it ever reach
a log line (defence in depth; nothing is meant to log it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError, KeyFormatError
from engine.keyfile import parse_exchange_key_document, parse_key_document, read_capped
from engine.ops.config import CredentialsConfig, KeySource
from engine.ops.logs import register_secret

if TYPE_CHECKING:
    from engine.auth import CdpKey, ExchangeKey

__all__ = [
    "ENV_EXCHANGE_KEY",
    "ENV_EXCHANGE_KEY_FILE",
    "ENV_EXCHANGE_PASSPHRASE",
    "ENV_EXCHANGE_SECRET",
    "ENV_KEY_FILE",
    "ENV_KEY_NAME",
    "ENV_KEY_SECRET",
    "Credentials",
    "ExchangeCredentials",
    "key_label",
    "read_credentials",
    "read_exchange_credentials",
    "read_exchange_key_file",
    "read_key_file",
]

ENV_KEY_NAME = "COINBASE_API_KEY"
ENV_KEY_SECRET = "COINBASE_API_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_KEY_FILE = "COINBASE_API_KEY_FILE"
ENV_EXCHANGE_KEY = "COINBASE_EXCHANGE_KEY"
ENV_EXCHANGE_SECRET = "COINBASE_EXCHANGE_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_EXCHANGE_PASSPHRASE = "COINBASE_EXCHANGE_PASSPHRASE"  # noqa: S105 - the variable's name
ENV_EXCHANGE_KEY_FILE = "COINBASE_EXCHANGE_KEY_FILE"
_EXCHANGE_ENV = (ENV_EXCHANGE_KEY, ENV_EXCHANGE_SECRET, ENV_EXCHANGE_PASSPHRASE)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A CDP key's name and private key text, and a description of where they were read from."""

    name: str
    private_key: str = field(repr=False)
    origin: str  # e.g. "environment (COINBASE_API_KEY, COINBASE_API_SECRET)" or "key file /etc/key.json"
    warnings: tuple[str, ...] = ()  # things that work but should be fixed (e.g. a world-readable key file)

    def __repr__(self) -> str:
        return f"Credentials(key={key_label(self.name)!r}, origin={self.origin!r})"

    @property
    def has_escaped_newlines(self) -> bool:
        """A PEM pasted with literal `\\n` escapes (one-line env vars): loads, but worth telling the user."""
        return "-----BEGIN" in self.private_key and "\\n" in self.private_key

    def signing_key(self) -> CdpKey:
        """Parse the key once into the Rust signing core; `KeyFormatError` (with a fix) when it is bad.

        The error names where the key was read from (`origin`), never the key text."""
        from engine.auth import CdpKey

        refusal: str | None = None
        try:
            return CdpKey(self.name, self.private_key)
        except KeyFormatError as exc:  # the signing core's fixed message; say which key it is about
            refusal = str(exc)
        raise KeyFormatError(f"{self.origin}: {refusal}")  # outside the except: nothing chained to it


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    """A Coinbase Exchange key: its id, base64 secret and passphrase, and where they were read from."""

    name: str  # the key id (not secret): what logs name it by
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    origin: str
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ExchangeCredentials(key={key_label(self.name)!r}, origin={self.origin!r})"

    def signing_key(self) -> ExchangeKey:
        """Parse the key once into the Rust signing core; `KeyFormatError` when the secret is not base64."""
        from engine.auth import ExchangeKey

        return ExchangeKey(self.name, self.secret, self.passphrase)


def key_label(name: str) -> str:
    """A short, non-secret label for logs: the end of the key id, never the org or the key text."""
    tail = name.rsplit("/", 1)[-1]
    label = f"…{tail[-6:]}" if len(tail) > 6 else tail
    # a name that will not load may hold anything: keep a log line one printable line
    return "".join(c if (c.isascii() and c.isprintable()) or c == "…" else "?" for c in label)


def read_credentials(config: CredentialsConfig, environ: Mapping[str, str] | None = None) -> Credentials:
    """Read the CDP key the config points at.

    Raises `ConfigError` (nothing where it looked) or `KeyFormatError` (something, but not a CDP key).
    """
    env = os.environ if environ is None else environ
    if config.source is KeySource.ENV:
        return _from_environment(env)
    if config.source is KeySource.FILE:
        assert config.file is not None  # the config loader requires it
        return read_key_file(config.file)
    return _from_keyring(config.keyring_service, config.keyring_username)


def _from_environment(env: Mapping[str, str]) -> Credentials:
    name = env.get(ENV_KEY_NAME, "").strip()
    secret = env.get(ENV_KEY_SECRET, "")
    key_file = env.get(ENV_KEY_FILE, "").strip()
    if name and secret.strip():
        register_secret(secret)
        return Credentials(name, secret, f"environment ({ENV_KEY_NAME}, {ENV_KEY_SECRET})")
    if key_file:
        return read_key_file(Path(key_file).expanduser())
    if name or secret.strip():
        missing = ENV_KEY_SECRET if name else ENV_KEY_NAME
        if secret.strip():
            register_secret(secret)
        raise ConfigError(
            f"{missing} is not set: set both {ENV_KEY_NAME} and {ENV_KEY_SECRET}, or {ENV_KEY_FILE}"
        )
    raise ConfigError(
        f"no API key in the environment: set {ENV_KEY_NAME} (the key name, organizations/…/apiKeys/…) and "
        f"{ENV_KEY_SECRET} (its private key), or {ENV_KEY_FILE} (the JSON file the portal downloaded)"
    )


def read_key_file(path: Path) -> Credentials:
    """The JSON key file the CDP portal downloads: `{"name" | "id": ..., "privateKey": ...}`."""
    return _from_json(*_read_file(path, "the portal's JSON key file"))


def _read_file(path: Path, expected: str) -> tuple[bytes, str, tuple[str, ...]]:
    """A key file's bytes, how to name it, and its warnings; `ConfigError` when it cannot be read."""
    shown = repr(str(path))  # repr: a path from the environment may hold an undecodable byte
    where = f"key file {shown}"
    try:
        info = path.stat()
        raw = read_capped(path, where)
    except FileNotFoundError:
        raise ConfigError(f"{where}: not found") from None
    except PermissionError:
        raise ConfigError(f"{where}: permission denied; the worker's user must be able to read it") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, expected {expected}") from None
    except KeyFormatError:  # too large to be a key file
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"{where}: cannot be read ({type(exc).__name__})") from None
    warnings: list[str] = []
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(f"{where} is readable by other users: chmod 600 {shown}")
    return raw, where, tuple(warnings)


def _from_json(raw: bytes | str, origin: str, warnings: tuple[str, ...] = ()) -> Credentials:
    document = parse_key_document(raw, origin)
    register_secret(document.private_key)
    return Credentials(document.name.strip(), document.private_key, origin, warnings)


def _from_keyring(service: str, username: str) -> Credentials:
    """The keyring entry holds the portal's JSON (store it with `keyring set <service> <username>`)."""
    return _from_json(*_keyring_entry(service, username))


def _keyring_entry(service: str, username: str) -> tuple[str, str]:
    """The keyring entry's text and how to name it; `ConfigError` when there is none."""
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
        import keyring.errors  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            "credentials.source = \"keyring\" needs the keyring extra: pip install 'coinbase-engine[keyring]'"
        ) from None
    origin = f"OS keyring (service {service!r}, user {username!r})"
    try:
        stored = keyring.get_password(service, username)
    except keyring.errors.KeyringError as exc:
        raise ConfigError(f"{origin}: keyring unavailable ({type(exc).__name__})") from None
    if not isinstance(stored, str) or not stored:
        raise ConfigError(
            f"{origin}: no entry. Store the JSON key file there: keyring set {service} {username} < key.json"
        )
    return stored, origin


def read_exchange_credentials(
    config: CredentialsConfig, environ: Mapping[str, str] | None = None
) -> ExchangeCredentials:
    """Read the Coinbase Exchange key the config points at: `ConfigError` (nothing where it looked) or
    `KeyFormatError` (something, but not an Exchange key)."""
    env = os.environ if environ is None else environ
    if config.source is KeySource.ENV:
        return _exchange_from_environment(env)
    if config.source is KeySource.FILE:
        assert config.file is not None  # the config loader requires it
        return read_exchange_key_file(config.file)
    return _exchange_from_json(*_keyring_entry(config.keyring_service, config.keyring_username))


def _exchange_from_environment(env: Mapping[str, str]) -> ExchangeCredentials:
    values = [env.get(name, "").strip() for name in _EXCHANGE_ENV]
    for value in values[1:]:
        if value:
            register_secret(value)
    if all(values):
        key, secret, passphrase = values
        return ExchangeCredentials(key, secret, passphrase, f"environment ({', '.join(_EXCHANGE_ENV)})")
    key_file = env.get(ENV_EXCHANGE_KEY_FILE, "").strip()
    if key_file and not any(values):
        return read_exchange_key_file(Path(key_file).expanduser())
    if any(values):
        missing = ", ".join(name for name, value in zip(_EXCHANGE_ENV, values, strict=True) if not value)
        raise ConfigError(
            f"{missing} not set: a Coinbase Exchange key needs all of {', '.join(_EXCHANGE_ENV)}"
        )
    raise ConfigError(
        f"no Coinbase Exchange key in the environment: set {', '.join(_EXCHANGE_ENV)} (the key, its base64 "
        f"secret and its passphrase), or {ENV_EXCHANGE_KEY_FILE} (a JSON file with key, secret, passphrase)"
    )


def read_exchange_key_file(path: Path) -> ExchangeCredentials:
    """A JSON file `{"key": ..., "secret": ..., "passphrase": ...}` holding a Coinbase Exchange key."""
    raw, where, warnings = _read_file(path, "a JSON file with key, secret and passphrase")
    return _exchange_from_json(raw, where, warnings)


def _exchange_from_json(raw: bytes | str, origin: str, warnings: tuple[str, ...] = ()) -> ExchangeCredentials:
    document = parse_exchange_key_document(raw, origin)
    register_secret(document.secret)
    register_secret(document.passphrase)
    return ExchangeCredentials(document.key, document.secret, document.passphrase, origin, warnings)
