"""The JSON key files, decoded as untrusted input: the CDP portal's download, and a Coinbase Exchange key's.

`{"name": "organizations/…/apiKeys/…", "privateKey": "…"}` (newer Ed25519 downloads say `id`). The file is
read at most `MAX_KEY_FILE_BYTES` (a real one is under 1 KiB), decoded by orjson (which refuses invalid
UTF-8, lone surrogate escapes and nesting deeper than 1024 levels, rather than recursing), and every refusal
is a `KeyFormatError` that names what was wrong and never any part of the content. Refusals are raised
outside the `except` block that saw the decoder's error, so no exception in the chain (`__context__`) keeps
the document either: a `JSONDecodeError` holds the whole text in `.doc`.

The key text itself is checked by the Rust signer when the key is built (`engine.auth.CdpKey`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.errors import KeyFormatError

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "ExchangeKeyDocument",
    "KeyDocument",
    "parse_exchange_key_document",
    "parse_key_document",
    "read_capped",
]

MAX_KEY_FILE_BYTES = 64 * 1024
_FORMAT = '{"name": "organizations/…/apiKeys/…", "privateKey": "…"}'
_EXCHANGE_FORMAT = '{"key": "…", "secret": "<base64>", "passphrase": "…"}'
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_NOT_JSON = object()


@dataclass(frozen=True, slots=True)
class KeyDocument:
    """The two fields a CDP key file must give, as found (not yet parsed as a key)."""

    name: str
    private_key: str = field(repr=False)


def read_capped(path: str | os.PathLike[str], where: str) -> bytes:
    """The file's bytes, refused once past `MAX_KEY_FILE_BYTES` without reading the rest.

    A device or pipe (whose size `stat` does not know) is bounded the same way. `OSError` propagates for
    the caller to word (a missing file is a config error to one caller, a key error to another).
    """
    with open(path, "rb") as key_file:
        raw = key_file.read(MAX_KEY_FILE_BYTES + 1)
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFormatError(
            f"{where}: larger than {MAX_KEY_FILE_BYTES // 1024} KiB, so not a CDP key file "
            "(the portal's is under 1 KiB): check the path"
        )
    return raw


def _document(raw: bytes | str, where: str, expected: str) -> dict[str, Any]:
    """A key file's content as a JSON object, every refusal naming `where` and the `expected` format."""
    if isinstance(raw, str):  # the keyring hands back text
        encoded = _encode(raw)
        if encoded is None:
            raise KeyFormatError(f"{where}: holds text that is not valid Unicode: store the key file again")
        raw = encoded
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFormatError(f"{where}: larger than {MAX_KEY_FILE_BYTES // 1024} KiB, so not a key file")
    if raw.startswith(_UTF8_BOM):  # an editor's byte-order mark, harmless
        raw = raw[len(_UTF8_BOM) :]
    if not raw.strip():
        raise KeyFormatError(f"{where}: empty. Expected {expected}")
    if raw.startswith(_UTF16_BOMS):
        raise KeyFormatError(
            f"{where}: saved as UTF-16 (as PowerShell's `>` writes): save it as UTF-8, or download it again"
        )
    document = _loads(raw)
    if document is _NOT_JSON:
        raise KeyFormatError(
            f"{where}: not JSON (or not UTF-8 text, or nested too deeply). Expected {expected}"
        )
    if not isinstance(document, dict):
        raise KeyFormatError(f"{where}: expected a JSON object, {expected}, not {_kind(document)}")
    return document


def parse_key_document(raw: bytes | str, where: str) -> KeyDocument:
    """The `name` (or `id`) and `privateKey` of a key file's content; `where` names it in errors."""
    document = _document(raw, where, f"the file the CDP portal downloads, {_FORMAT}")
    name = document.get("name")
    if name is None or name == "":
        name = document.get("id")
    private_key = document.get("privateKey")
    if name is None or (isinstance(name, str) and not name.strip()):
        if "passphrase" in document or "secret" in document:
            raise KeyFormatError(
                f"{where}: this looks like a Coinbase Exchange (HMAC) key; Advanced Trade needs a CDP key: "
                "create one at https://portal.cdp.coinbase.com/access/api"
            )
        raise KeyFormatError(f'{where}: no "name" (or "id") field naming the key')
    if not isinstance(name, str):
        raise KeyFormatError(f'{where}: the "name" field must be a string, not {_kind(name)}')
    if private_key is None or (isinstance(private_key, str) and not private_key.strip()):
        raise KeyFormatError(f'{where}: no "privateKey" field')
    if not isinstance(private_key, str):
        raise KeyFormatError(f'{where}: the "privateKey" field must be a string, not {_kind(private_key)}')
    return KeyDocument(name, private_key)


@dataclass(frozen=True, slots=True)
class ExchangeKeyDocument:
    """A Coinbase Exchange key file's three fields; the secret and passphrase never shown."""

    key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)


def parse_exchange_key_document(raw: bytes | str, where: str) -> ExchangeKeyDocument:
    """The `key`, `secret` and `passphrase` of a Coinbase Exchange key file (JSON); `where` names it."""
    document = _document(raw, where, _EXCHANGE_FORMAT)
    if "privateKey" in document and "passphrase" not in document:
        raise KeyFormatError(
            f"{where}: this looks like a CDP key file; Coinbase Exchange needs an Exchange key: "
            f"{_EXCHANGE_FORMAT}"
        )
    values: list[str] = []
    for name in ("key", "secret", "passphrase"):
        value = document.get(name)
        if not isinstance(value, str) or not value.strip():
            shown = "missing or empty" if value in (None, "") else f"{_kind(value)}, not a string"
            raise KeyFormatError(f'{where}: the "{name}" field is {shown}; expected {_EXCHANGE_FORMAT}')
        values.append(value.strip())
    return ExchangeKeyDocument(*values)


def _loads(raw: bytes) -> Any:
    """The decoded document, or `_NOT_JSON`: the decoder's exception ends here, where nothing chains to it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _encode(text: str) -> bytes | None:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words: never the value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "null"
