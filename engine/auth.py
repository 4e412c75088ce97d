"""Coinbase credentials: CDP API keys (JWT bearer tokens) and Coinbase Exchange keys (HMAC headers).

Keys are parsed once by the Rust core (`engine._signer`) and held only in Rust memory, wiped when dropped.
`CdpKey` is the Rust class itself plus two loaders, so `rest_jwt` runs with no Python frame in between:

    key = CdpKey.from_env()  # COINBASE_API_KEY + COINBASE_API_SECRET, or COINBASE_API_KEY_FILE
    key.clock_offset = server_time - time.time()  # after measuring GET /api/v3/brokerage/time
    key.premint([("POST", "/api/v3/brokerage/orders")])
    headers = {"Authorization": f"Bearer {key.rest_jwt('POST', '/api/v3/brokerage/orders')}"}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from engine import _signer
from engine.errors import KeyFormatError
from engine.keyfile import parse_key_document, read_capped

__all__ = ["CdpKey", "ExchangeKey", "JwtVerifier"]

ExchangeKey = _signer.ExchangeKey
JwtVerifier = _signer.JwtVerifier

ENV_KEY_NAME = "COINBASE_API_KEY"
ENV_KEY_SECRET = "COINBASE_API_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_KEY_FILE = "COINBASE_API_KEY_FILE"


class CdpKey(_signer.CdpKey):
    """A Coinbase CDP API key (ES256 or EdDSA). See `engine._signer.CdpKey` for the token methods."""

    __slots__ = ()

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> Self:
        """Load the key file the CDP portal downloads: `name` (or `id`) and `privateKey`.

        Every way the file can be wrong (unreadable, over 64 KiB, not UTF-8 JSON, nested, fields of the wrong
        type, a key that does not parse) is a `KeyFormatError` naming the file, never quoting it.
        """
        where = f"the CDP key file {os.fspath(path)!r}"
        raw = _read_or_reason(path, where)
        if isinstance(raw, str):
            raise KeyFormatError(f"could not read {where} ({raw}): check the path and its permissions")
        document = parse_key_document(raw, where)
        refusal: str | None = None
        try:
            return cls(document.name, document.private_key)
        except KeyFormatError as exc:  # the signing core's fixed message; say which file it is about
            refusal = str(exc)
        raise KeyFormatError(f"{where}: {refusal}")  # outside the except: nothing chained to the refusal

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """`COINBASE_API_KEY` and `COINBASE_API_SECRET` (the official SDK's names), else a key file.

        The file is named by `COINBASE_API_KEY_FILE`; a partial pair is an error, not a fall-back to it.
        """
        env = os.environ if environ is None else environ
        name, secret = env.get(ENV_KEY_NAME), env.get(ENV_KEY_SECRET)
        if name and secret:
            return cls(name, secret)
        if name or secret:
            missing = ENV_KEY_SECRET if name else ENV_KEY_NAME
            raise KeyFormatError(f"{missing} is not set: set both {ENV_KEY_NAME} and {ENV_KEY_SECRET}")
        key_file = env.get(ENV_KEY_FILE)
        if key_file:
            return cls.from_json_file(key_file)
        raise KeyFormatError(
            f"no CDP API key in the environment: set {ENV_KEY_NAME} and {ENV_KEY_SECRET}, "
            f"or {ENV_KEY_FILE} to the path of the key file downloaded from the CDP portal"
        )


def _read_or_reason(path: str | os.PathLike[str], where: str) -> bytes | str:
    """The file's bytes, or why it could not be read (the `OSError` ends here, so nothing chains to it)."""
    try:
        return read_capped(path, where)
    except KeyFormatError:  # larger than any key file
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        return getattr(exc, "strerror", None) or type(exc).__name__
