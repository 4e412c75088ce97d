"""A refused key file never echoes its content: every field is a unique marker, and no error shows any of it.

Each document below is wrong in one way, and every string in it (values, keys, the key text) is a marker
made at test time. Whichever door loads it (`CdpKey.from_json_file`, the worker's `read_key_file`, the
keyring's text through `parse_key_document`, the signing core on a well-shaped file), the `KeyFormatError`
or `ConfigError` raised, and every exception chained to it, must hold no 8-character run of any marker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.auth import CdpKey
from engine.errors import ConfigError, KeyFormatError
from engine.keyfile import MAX_KEY_FILE_BYTES, parse_key_document
from engine.ops.credentials import read_key_file
from tests.support.keys import new_es256_key

_RUN = 8
_MARKERS = 4


def _markers() -> list[str]:
    # letters outside hex, so no run of a marker can be a digest or an address an error might print
    return [
        "qz" + secrets.token_hex(10).translate(str.maketrans("abcdef", "ghjkmn")) for _ in range(_MARKERS)
    ]


def _pem(body: str) -> str:
    return f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"


_KEY = new_es256_key().private_key


def _documents(m: list[str]) -> dict[str, bytes]:
    """One wrong file per way the loader can refuse it, each carrying the markers."""

    def dumped(value: object) -> bytes:
        return json.dumps(value).encode()

    return {
        "name_not_a_string": dumped({"name": [m[0], {m[1]: m[2]}], "privateKey": m[3]}),
        "private_key_not_a_string": dumped({"name": m[0], "privateKey": {m[1]: [m[2], m[3]]}}),
        "an_exchange_key": dumped({"passphrase": m[0], "secret": m[1], "key": m[2], m[3]: m[3]}),
        "no_private_key": dumped({"id": m[0], m[1]: m[2], "privateKey": " " + " " * len(m[3])}),
        "no_name": dumped({"name": "", "id": None, "privateKey": m[0], m[1]: [m[2], m[3]]}),
        "an_array": dumped([m[0], m[1], {m[2]: m[3]}]),
        "a_string": dumped(m[0] + m[1] + m[2] + m[3]),
        "truncated": dumped({"name": m[0], "privateKey": m[1], m[2]: m[3]})[:-3],
        "utf16": json.dumps({"name": m[0], "privateKey": m[1], m[2]: m[3]}).encode("utf-16"),
        "not_utf8": f'{{"name": "{m[0]}\xff{m[1]}", "privateKey": "{m[2]}{m[3]}"}}'.encode("latin-1"),
        "lone_surrogate": f'{{"name": "{m[0]}\\ud800{m[1]}", "privateKey": "{m[2]}{m[3]}"}}'.encode(),
        "too_deep": ("[" * 2000 + json.dumps(m) + "]" * 2000).encode(),
        "too_large": dumped({"name": m[0], "privateKey": (m[1] + m[2] + m[3]) * (MAX_KEY_FILE_BYTES // 60)}),
        # a real key (made here, not a marker) under a name the signing core refuses
        "name_with_a_control_char": dumped({"name": m[0] + "\x01" + m[1] + m[2] + m[3], "privateKey": _KEY}),
        "name_too_long": dumped({"name": (m[0] + m[1] + m[2] + m[3]) * 20, "privateKey": _KEY}),
        "key_text_not_a_key": dumped(
            {"name": f"organizations/{m[0]}/apiKeys/{m[1]}", "privateKey": _pem(m[2] + "/" + m[3])}
        ),
        "key_text_not_pem": dumped(
            {"name": f"organizations/{m[0]}/apiKeys/{m[1]}", "privateKey": m[2] + "\n" + m[3]}
        ),
    }


# Why each file is refused, so each case proves it reached the refusal it is named for.
_REASONS = {
    "name_not_a_string": '"name" field must be a string',
    "private_key_not_a_string": '"privateKey" field must be a string',
    "an_exchange_key": "Coinbase Exchange (HMAC) key",
    "no_private_key": 'no "privateKey" field',
    "no_name": 'no "name" (or "id") field',
    "an_array": "not an array",
    "a_string": "not a string",
    "truncated": "not JSON",
    "utf16": "saved as UTF-16",
    "not_utf8": "not JSON",
    "lone_surrogate": "not JSON",
    "too_deep": "not JSON",
    "too_large": "larger than 64 KiB",
    "name_with_a_control_char": "key name contains a character no Coinbase credential has",
    "name_too_long": "key name is longer than any Coinbase credential",
    "key_text_not_a_key": "PEM block is truncated or corrupt",
    "key_text_not_pem": "base64 private key decodes to the wrong number of bytes",
}
# The refusals `parse_key_document` makes itself; the rest decode as a document and the signing core refuses.
_FILE_REFUSALS = frozenset(_REASONS) - {
    "name_with_a_control_char",
    "name_too_long",
    "key_text_not_a_key",
    "key_text_not_pem",
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _echoes(text: str, markers: list[str]) -> list[str]:
    return [
        marker[i : i + _RUN]
        for marker in markers
        for i in range(len(marker) - _RUN + 1)
        if marker[i : i + _RUN] in text
    ]


def _refusal(load: Callable[[], object]) -> BaseException:
    with pytest.raises((KeyFormatError, ConfigError)) as caught:
        load()
    return caught.value


def _assert_silent(error: BaseException, markers: list[str], case: str) -> None:
    assert _REASONS[case] in str(error)
    for link in _chain(error):
        shown = "\n".join([str(link), repr(link), *map(repr, link.args)])
        assert not _echoes(shown, markers), f"{type(link).__name__} echoes its key file: {shown!r}"


@pytest.mark.parametrize("case", sorted(_REASONS))
def test_a_refused_key_file_echoes_none_of_its_content(tmp_path: Path, case: str) -> None:
    markers = _markers()
    raw = _documents(markers)[case]
    path = tmp_path / "key.json"
    path.write_bytes(raw)
    path.chmod(0o600)

    def worker_load() -> object:
        return read_key_file(path).signing_key()  # the signing core judges what the file decoder let by

    refused = _refusal(lambda: CdpKey.from_json_file(path))
    _assert_silent(refused, markers, case)
    assert str(refused).startswith(f"the CDP key file {str(path)!r}: ")  # the signing core's refusals too
    assert refused.__context__ is None
    _assert_silent(_refusal(worker_load), markers, case)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return  # the keyring hands back text; bytes that are not UTF-8 never arrive that way
    if case in _FILE_REFUSALS:
        _assert_silent(_refusal(lambda: parse_key_document(text, "OS keyring")), markers, case)
    else:
        _assert_silent(_refusal(lambda: _signing_key(text)), markers, case)


def _signing_key(text: str) -> CdpKey:
    document = parse_key_document(text, "OS keyring")
    return CdpKey(document.name, document.private_key)


def test_every_case_is_a_document() -> None:
    assert set(_documents(_markers())) == set(_REASONS)


def test_the_markers_would_be_seen_if_echoed() -> None:
    """The check itself can fail: an error quoting a marker's middle is caught."""
    markers = _markers()
    assert _echoes(f"bad field {markers[2][5:15]!r}", markers)
    assert not _echoes("bad field", markers)
