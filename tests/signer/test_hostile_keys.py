"""Hostile key material at every door to the signer: `CdpKey`, `CdpKey.from_env`, `CdpKey.from_json_file`,
`ExchangeKey` and `ExchangeKey.headers`.

Whatever arrives, the answer is a key or a `KeyFormatError` (`InvalidRequest` for what is signed per request)
whose message, `args`, `repr` and chained exceptions hold no 8 consecutive characters of the input's secret
part. Tables by class (surrogates, invalid UTF-8, NUL and controls, non-ASCII, huge, deeply nested, wrong JSON
types, bad timestamps, header injection), then properties over arbitrary text and bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.auth import CdpKey, ExchangeKey, JwtVerifier
from engine.errors import InvalidRequest, KeyFormatError
from tests.support import hostile
from tests.support.keys import TestExchangeKey, TestKey, new_ed25519_key, new_es256_key, new_exchange_key

ES256 = new_es256_key()
ED25519 = new_ed25519_key()
EXCHANGE = new_exchange_key()
SIGNER = ExchangeKey(EXCHANGE.key, EXCHANGE.secret, EXCHANGE.passphrase)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(call: Callable[[], object], *secrets: str, error: type[Exception] = KeyFormatError) -> Exception:
    """`call()` raises `error`, clean: nothing chained, nothing of `secrets` repeated."""
    with pytest.raises(error) as caught:
        call()
    hostile.assert_clean(caught.value, *secrets)
    return caught.value


def splice(text: str, bad: str, at: float = 0.5) -> str:
    where = int(len(text) * at)
    return text[:where] + bad + text[where:]


# -- text damage, applied to every field of both kinds of key ------------------------------------------------

SURROGATES = {
    "lone low surrogate mid-key": lambda k: splice(k, "\udcff"),
    "lone high surrogate": lambda k: splice(k, "\ud800"),
    "surrogate at the start": lambda k: "\udc80" + k,
    "surrogate at the end": lambda k: k + "\udcff",
    "reversed pair": lambda k: splice(k, "\udc00\ud800"),
    "all surrogates": lambda k: "\udcff" * 64,
    "surrogateescape of 0xff 0xfe": lambda k: splice(k, b"\xff\xfe".decode("utf-8", "surrogateescape")),
    "surrogateescape of a cut UTF-8 sequence": lambda k: k + b"\xc3".decode("utf-8", "surrogateescape"),
    "surrogateescape of CESU-8": lambda k: splice(k, b"\xed\xa0\x80".decode("utf-8", "surrogateescape")),
    "surrogate after an escaped newline": lambda k: splice(k, "\\n\udcff", 0.3),
    "surrogate in a latin-1 decoded secret": lambda k: k.encode().decode("latin-1") + "\udcfe",
}
CONTROLS = {
    "NUL in the middle": lambda k: splice(k, "\x00"),
    "NUL at the start": lambda k: "\x00" + k,
    "NUL at the end (C string)": lambda k: k + "\x00",
    "SOH": lambda k: splice(k, "\x01"),
    "BEL": lambda k: splice(k, "\x07"),
    "backspace": lambda k: splice(k, "\x08", 0.2),
    "vertical tab": lambda k: splice(k, "\x0b"),
    "form feed": lambda k: splice(k, "\x0c"),
    "ANSI escape": lambda k: splice(k, "\x1b[31m"),
    "DEL": lambda k: splice(k, "\x7f"),
    "C1 NEL": lambda k: splice(k, "\x85"),
}
NON_ASCII = {
    "e acute": lambda k: splice(k, "é"),
    "no-break space": lambda k: splice(k, "\u00a0"),
    "byte-order mark": lambda k: "\ufeff" + k,
    "zero-width space": lambda k: splice(k, "\u200b"),
    "fullwidth letter": lambda k: splice(k, "\uff2d"),
    "right-to-left override": lambda k: splice(k, "\u202e"),
    "emoji": lambda k: splice(k, "😀"),
    "combining accent": lambda k: splice(k, "\u0301"),
    "line separator": lambda k: splice(k, "\u2028"),
    "replacement character": lambda k: splice(k, "\ufffd"),
    "Cyrillic A for A": lambda k: k.replace("A", "\u0410", 1) if "A" in k else "\u0410" + k,
}
TEXT_DAMAGE = {
    f"{cls}: {name}": damage
    for cls, table in (("surrogate", SURROGATES), ("control", CONTROLS), ("non-ascii", NON_ASCII))
    for name, damage in table.items()
}


def _cdp_fields(
    key: TestKey,
) -> dict[str, Callable[[Callable[[str], str]], tuple[Callable[[], object], str]]]:
    return {
        "CdpKey private key": lambda d: (lambda: CdpKey(key.name, d(key.private_key)), d(key.private_key)),
        "CdpKey name": lambda d: (lambda: CdpKey(d(key.name), key.private_key), d(key.name)),
        "from_env secret": lambda d: (
            lambda: CdpKey.from_env(
                {"COINBASE_API_KEY": key.name, "COINBASE_API_SECRET": d(key.private_key)}
            ),
            d(key.private_key),
        ),
    }


def _exchange_fields(
    key: TestExchangeKey,
) -> dict[str, Callable[[Callable[[str], str]], tuple[Callable[[], object], str]]]:
    return {
        "ExchangeKey key": lambda d: (
            lambda: ExchangeKey(d(key.key), key.secret, key.passphrase),
            d(key.key),
        ),
        "ExchangeKey secret": lambda d: (
            lambda: ExchangeKey(key.key, d(key.secret), key.passphrase),
            d(key.secret),
        ),
        "ExchangeKey passphrase": lambda d: (
            lambda: ExchangeKey(key.key, key.secret, d(key.passphrase)),
            d(key.passphrase),
        ),
    }


FIELDS = {
    **{f"ES256 {k}": v for k, v in _cdp_fields(ES256).items()},
    **{f"EdDSA {k}": v for k, v in _cdp_fields(ED25519).items()},
    **_exchange_fields(EXCHANGE),
    # the simulator registers public keys through the same door
    "JwtVerifier public key": lambda d: (
        lambda: JwtVerifier().register(ES256.name, d(ES256.public_key_pem)),
        d(ES256.public_key_pem),
    ),
}


@pytest.mark.parametrize("damage", TEXT_DAMAGE.values(), ids=TEXT_DAMAGE.keys())
@pytest.mark.parametrize("field", FIELDS.values(), ids=FIELDS.keys())
def test_impossible_text_in_any_field_is_a_clean_key_format_error(
    field: Callable[[Callable[[str], str]], tuple[Callable[[], object], str]], damage: Callable[[str], str]
) -> None:
    call, secret = field(damage)
    exc = refused(call, secret, ES256.private_key, ED25519.private_key, EXCHANGE.secret, EXCHANGE.passphrase)
    assert re.search(r"not text|no Coinbase credential has", str(exc)), str(exc)


def test_the_issue_example_a_pem_with_a_lone_surrogate() -> None:
    pem = ES256.forms["pkcs8_pem"]
    exc = refused(lambda: CdpKey(ES256.name, pem.replace("\n", "\n\udcff", 2)), pem)
    assert "the private key holds bytes that are not text" in str(exc)
    assert "environment variable" in str(exc)  # where such a byte usually comes from
    assert len(exc.args) == 1


HUGE: dict[str, tuple[Callable[[], object], str]] = {
    "private key of 16385 characters": (lambda: CdpKey(ES256.name, "A" * 16_385), "too long"),
    "private key of a million characters": (lambda: CdpKey(ES256.name, "A" * 1_000_000), "too long"),
    "a real key padded with 20000 spaces": (lambda: CdpKey(ES256.name, ES256.private_key + " " * 20_000), ""),
    "a real key a hundred times": (lambda: CdpKey(ED25519.name, ED25519.private_key * 300), ""),
    "name of 1025 characters": (lambda: CdpKey("o" * 1025, ES256.private_key), "name"),
    "Exchange key of 257 characters": (
        lambda: ExchangeKey("k" * 257, EXCHANGE.secret, "p"),
        "Exchange API key",
    ),
    "Exchange secret of 1025 characters": (lambda: ExchangeKey("k", EXCHANGE.secret * 12, "p"), "secret"),
    "passphrase of 257 characters": (lambda: ExchangeKey("k", EXCHANGE.secret, "p" * 257), "passphrase"),
    "from_env with a 200 KB secret": (
        lambda: CdpKey.from_env({"COINBASE_API_KEY": ES256.name, "COINBASE_API_SECRET": "B" * 200_000}),
        "too long",
    ),
    "public key of 20000 characters (verifier)": (
        lambda: JwtVerifier().register("kid", "-----BEGIN PUBLIC KEY-----" * 800),
        "public key",
    ),
}


@pytest.mark.parametrize(("call", "says"), HUGE.values(), ids=HUGE.keys())
def test_huge_text_is_refused_by_its_length(call: Callable[[], object], says: str) -> None:
    exc = refused(call, ES256.private_key, ED25519.private_key, EXCHANGE.secret)
    assert "longer than any Coinbase credential" in str(exc)
    assert says.replace("too long", "") in str(exc)


@pytest.mark.parametrize("value", [None, 42, 4.2, b"bytes", ["a"], {"a": 1}, True], ids=repr)
def test_a_non_string_is_a_key_format_error_not_a_type_error(value: object) -> None:
    refused(lambda: CdpKey(value, ES256.private_key))  # type: ignore[arg-type]
    refused(lambda: CdpKey(ES256.name, value))  # type: ignore[arg-type]
    for args in ((value, EXCHANGE.secret, "p"), ("k", value, "p"), ("k", EXCHANGE.secret, value)):
        refused(lambda args=args: ExchangeKey(*args))  # type: ignore[misc]


# -- key files -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile_keys")


def _write(directory: Path, raw: bytes, name: str = "cdp_api_key.json") -> Path:
    path = directory / name
    path.write_bytes(raw)
    path.chmod(0o600)
    return path


def _portal(key: TestKey) -> bytes:
    return json.dumps(key.portal_json()).encode()


INVALID_UTF8 = {
    "0xff": b"\xff",
    "UTF-16 byte-order mark inside": b"\xff\xfe",
    "cut two-byte sequence": b"\xc3(",
    "lone continuation bytes": b"\xa0\xa1",
    "bad second byte of three": b"\xe2\x28\xa1",
    "bad third byte of three": b"\xe2\x82\x28",
    "bad four-byte sequence": b"\xf0\x28\x8c\xbc",
    "five-byte form": b"\xf8\xa1\xa1\xa1\xa1",
    "encoded surrogate (CESU-8)": b"\xed\xa0\x80",
    "overlong slash": b"\xc0\xaf",
    "bare continuation": b"\x80",
}


@pytest.mark.parametrize("bad", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_in_a_key_file_or_the_environment(key_dir: Path, bad: bytes) -> None:
    raw = _portal(ES256)
    at = raw.index(b"MHcC") + 20  # inside the private key's base64
    path = _write(key_dir, raw[:at] + bad + raw[at:])
    exc = refused(lambda: CdpKey.from_json_file(path), ES256.private_key)
    assert str(path) in str(exc)
    assert "not JSON (or not UTF-8 text" in str(exc)
    # the same bytes in COINBASE_API_SECRET arrive as Python decodes the environment: surrogateescape
    environ_value = (ES256.private_key.encode()[:30] + bad + ES256.private_key.encode()[30:]).decode(
        "utf-8", "surrogateescape"
    )
    env = {"COINBASE_API_KEY": ES256.name, "COINBASE_API_SECRET": environ_value}
    refused(lambda: CdpKey.from_env(env), environ_value, ES256.private_key)


def test_key_file_escapes_surrogates_nul_and_controls(key_dir: Path) -> None:
    for damage in [*SURROGATES.values(), *CONTROLS.values(), *NON_ASCII.values()]:
        text = damage(ES256.private_key)
        raw = json.dumps({"name": ES256.name, "privateKey": text}).encode()  # "\udcff" escapes, "\u0000"...
        exc = refused(lambda raw=raw: CdpKey.from_json_file(_write(key_dir, raw)), text, ES256.private_key)
        assert "private key" in str(exc) or "not JSON" in str(exc), str(exc)


# Each under the 64 KiB cap, so that it is the nesting that is refused (json.loads raised RecursionError).
DEEPLY_NESTED = {
    "1025 arrays": (b"[" * 1025 + b"]" * 1025, "not JSON"),
    "5000 arrays": (b"[" * 5000 + b"]" * 5000, "not JSON"),
    "30000 arrays": (b"[" * 30_000 + b"]" * 30_000, "not JSON"),
    "60000 unclosed arrays": (b"[" * 60_000, "not JSON"),
    "10000 objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "not JSON"),
    "arrays and objects mixed": (b'[{"a":' * 3000 + b"1" + b"}]" * 3000, "not JSON"),
    "nested privateKey": (
        b'{"name": "organizations/o/apiKeys/k", "privateKey": ' + b"[" * 25_000 + b"]" * 25_000 + b"}",
        "not JSON",
    ),
    "nested name": (
        b'{"privateKey": "AAAA", "name": ' + b'{"x":' * 8000 + b"1" + b"}" * 8000 + b"}",
        "not JSON",
    ),
    "nested under an unknown field": (
        b'{"name": "n", "privateKey": "k", "extra": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        "not JSON",
    ),
    "within the decoder's limit: a wrong type": (
        b'{"name": "n", "privateKey": ' + b"[" * 500 + b"]" * 500 + b"}",
        '"privateKey" field must be a string',
    ),
    "a million arrays: refused by size": (b"[" * 1_000_000 + b"]" * 1_000_000, "larger than 64 KiB"),
}


@pytest.mark.parametrize(("raw", "says"), DEEPLY_NESTED.values(), ids=DEEPLY_NESTED.keys())
def test_deeply_nested_key_files_are_key_format_errors_not_recursion(
    key_dir: Path, raw: bytes, says: str
) -> None:
    path = _write(key_dir, raw)
    assert says in str(refused(lambda: CdpKey.from_json_file(path)))


WRONG_TYPES = {
    "name is an array": ({"name": ["organizations/o"], "privateKey": ES256.private_key}, "name", "an array"),
    "name is a number": ({"name": 12345, "privateKey": ES256.private_key}, "name", "a number"),
    "name is an object": ({"name": {"id": "x"}, "privateKey": ES256.private_key}, "name", "an object"),
    "name is true": ({"name": True, "privateKey": ES256.private_key}, "name", "a boolean"),
    "id is an array": ({"id": [1], "privateKey": ES256.private_key}, "name", "an array"),
    "name null and no id": ({"name": None, "privateKey": ES256.private_key}, 'no "name"', ""),
    "privateKey is an array": (
        {"name": ES256.name, "privateKey": [ES256.private_key]},
        "privateKey",
        "an array",
    ),
    "privateKey is a number": ({"name": ES256.name, "privateKey": 1e300}, "privateKey", "a number"),
    "privateKey is an object": ({"name": ES256.name, "privateKey": {"pem": "x"}}, "privateKey", "an object"),
    "privateKey is false": ({"name": ES256.name, "privateKey": False}, "privateKey", "a boolean"),
    "top level is an array": ([ES256.name, ES256.private_key], "JSON object", "an array"),
    "top level is a string": (ES256.private_key, "JSON object", "a string"),
    "top level is null": (None, "JSON object", "null"),
    "an Exchange key file": (
        {"key": "k", "secret": EXCHANGE.secret, "passphrase": "p"},
        "Coinbase Exchange",
        "",
    ),
}


@pytest.mark.parametrize(("document", "field", "kind"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_json_types_name_the_field_and_the_type(
    key_dir: Path, document: object, field: str, kind: str
) -> None:
    path = _write(key_dir, json.dumps(document).encode())
    exc = refused(lambda: CdpKey.from_json_file(path), ES256.private_key, EXCHANGE.secret)
    assert field in str(exc), str(exc)
    assert kind in str(exc), str(exc)


def test_huge_and_odd_files_are_refused_before_they_are_read(key_dir: Path) -> None:
    sparse = key_dir / "sparse.json"
    with open(sparse, "wb") as f:  # 1 GB that takes no disk: it must be refused after reading 64 KiB
        f.truncate(1 << 30)
    for path in (sparse, Path("/dev/zero"), _write(key_dir, b" " * 70_000 + _portal(ES256), "padded.json")):
        assert "larger than 64 KiB" in str(
            refused(lambda path=path: CdpKey.from_json_file(path), ES256.private_key)
        )
    sparse.unlink()
    for raw, says in [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b"\xff\xfe{\x00", "UTF-16"),
    ]:
        assert says in str(refused(lambda raw=raw: CdpKey.from_json_file(_write(key_dir, raw))))
    refused(lambda: CdpKey.from_json_file(key_dir / "missing\x00.json"))
    refused(lambda: CdpKey.from_json_file(key_dir))  # a directory


def test_a_byte_order_mark_before_the_json_is_harmless(key_dir: Path) -> None:
    key = CdpKey.from_json_file(_write(key_dir, b"\xef\xbb\xbf" + _portal(ED25519)))
    assert key.name == ED25519.name


# -- what is signed per request ------------------------------------------------------------------------------

BAD_TIMESTAMPS: list[object] = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e9", "-1", "+1700000000", " 1700000000", "1700000000 ",
    "1700000000\r\nX-Evil: 1", "", "1.", ".5", "0x10", "\u0661\u0667" + "\u0660" * 8, "1_700_000_000",
    "9" * 33, "1\x00", "1700000000\udcff",
    float("nan"), float("inf"), float("-inf"), -1.0, -5, True, 10**30, 1e300,
]  # fmt: skip


@pytest.mark.parametrize("timestamp", BAD_TIMESTAMPS, ids=repr)
def test_bad_timestamps_are_refused(timestamp: object) -> None:
    sign = lambda: SIGNER.headers("GET", "/orders", b"", timestamp)  # type: ignore[arg-type]  # noqa: E731
    exc = refused(sign, EXCHANGE.secret, EXCHANGE.passphrase, error=InvalidRequest)
    assert "number of seconds" in str(exc)


@pytest.mark.parametrize("timestamp", [0, 1_700_000_000, 1_700_000_000.25, "1700000000", "1700000000.123456"])
def test_good_timestamps_are_sent_as_digits(timestamp: float | str) -> None:
    sent = SIGNER.headers("GET", "/orders", b"", timestamp)["CB-ACCESS-TIMESTAMP"]
    assert re.fullmatch(r"\d+(\.\d+)?", sent)
    assert float(sent) == float(timestamp)


INJECTION = {
    "CRLF and a header in the path": ("GET", "/orders\r\nX-Evil: 1"),
    "LF in the path": ("GET", "/orders\nX: 1"),
    "CR in the path": ("GET", "/orders\rX"),
    "NUL in the path": ("GET", "/orders\x00"),
    "a second request in the path": ("GET", "/x HTTP/1.1\r\nHost: evil\r\n\r\nGET /y"),
    "space in the path": ("GET", "/orders HTTP/1.1"),
    "tab in the path": ("GET", "/orders\t"),
    "non-ASCII in the path": ("GET", "/ordérs"),
    "surrogate in the path": ("GET", "/orders\udcff"),
    "no leading slash": ("GET", "orders"),
    "a full URL": ("GET", "http://evil.example/orders"),
    "CRLF in the method": ("GET\r\n", "/orders"),
    "NUL in the method": ("GET\x00", "/orders"),
    "request line in the method": ("GET / HTTP/1.1\r\nX", "/orders"),
    "surrogate in the method": ("G\udcffT", "/orders"),
}


@pytest.mark.parametrize(("method", "path"), INJECTION.values(), ids=INJECTION.keys())
def test_header_injection_characters_are_refused(method: str, path: str) -> None:
    exc = refused(lambda: SIGNER.headers(method, path, b"{}"), EXCHANGE.secret, EXCHANGE.passphrase,
                  error=InvalidRequest)  # fmt: skip
    assert "method" in str(exc) or "request path" in str(exc)


def test_passphrase_with_a_line_break_cannot_become_a_second_header() -> None:
    for passphrase in ("p\r\nX-Evil: 1", "p\n", "p\r", "p\x00"):
        refused(
            lambda p=passphrase: ExchangeKey(EXCHANGE.key, EXCHANGE.secret, p), passphrase, EXCHANGE.secret
        )


# -- properties ----------------------------------------------------------------------------------------------

names = st.one_of(st.just(ES256.name), st.just(ED25519.name), hostile.hostile_text)


def _key_or_clean_error(call: Callable[[], object], *secrets: str) -> object | None:
    value, exc = hostile.attempt(call, KeyFormatError)
    if exc is not None:
        hostile.assert_clean(exc, *secrets)
    return value


@PROPERTY
@given(name=names, private_key=hostile.hostile_text)
def test_cdp_key_takes_any_text(name: str, private_key: str) -> None:
    key = _key_or_clean_error(lambda: CdpKey(name, private_key), private_key, name)
    if key is not None:
        assert isinstance(key, CdpKey)
        assert key.rest_jwt("GET", "/api/v3/brokerage/accounts")


@PROPERTY
@given(
    environ=st.dictionaries(
        st.sampled_from(["COINBASE_API_KEY", "COINBASE_API_SECRET"]), st.one_of(names, hostile.hostile_text)
    )
)
def test_from_env_takes_any_environment(environ: dict[str, str]) -> None:
    _key_or_clean_error(lambda: CdpKey.from_env(environ), *environ.values())


@PROPERTY
@given(case=hostile.hostile_key_file())
def test_from_json_file_takes_any_bytes(key_dir: Path, case: tuple[bytes, str]) -> None:
    raw, secret = case
    path = _write(key_dir, raw, "property.json")
    _key_or_clean_error(lambda: CdpKey.from_json_file(path), secret)


@PROPERTY
@given(
    key=st.one_of(st.just(EXCHANGE.key), hostile.hostile_text),
    secret=st.one_of(st.just(EXCHANGE.secret), hostile.hostile_text),
    passphrase=st.one_of(st.just(EXCHANGE.passphrase), hostile.hostile_text),
)
def test_exchange_key_takes_any_text(key: str, secret: str, passphrase: str) -> None:
    made = _key_or_clean_error(lambda: ExchangeKey(key, secret, passphrase), secret, passphrase, key)
    if made is not None:
        assert isinstance(made, ExchangeKey)
        headers = made.headers("GET", "/orders")
        assert all(re.fullmatch(r"[\x20-\x7e]+", value) for value in headers.values())


@PROPERTY
@given(
    method=st.one_of(
        st.sampled_from(["GET", "POST", "delete"]), st.text(hostile.every_character, max_size=12)
    ),
    path=st.one_of(
        st.text(hostile.every_character, max_size=60), st.text(max_size=60).map(lambda p: "/" + p)
    ),
    timestamp=st.one_of(
        st.none(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(hostile.every_character, max_size=24),
        st.from_regex(r"\d{1,12}(\.\d{1,6})?", fullmatch=True),
    ),
)
def test_headers_sign_only_what_can_be_sent(method: str, path: str, timestamp: float | str | None) -> None:
    headers, exc = hostile.attempt(lambda: SIGNER.headers(method, path, b"", timestamp), InvalidRequest)
    if exc is not None:
        hostile.assert_clean(exc, EXCHANGE.secret, EXCHANGE.passphrase)
        return
    assert headers is not None
    sent = headers["CB-ACCESS-TIMESTAMP"]
    assert re.fullmatch(r"\d+(\.\d+)?", sent)
    assert len(sent) <= 32
    assert re.fullmatch(r"[A-Za-z]{1,16}", method)
    assert re.fullmatch(r"/[\x21-\x7e]*", path)
