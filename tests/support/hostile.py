"""Hostile key material for the property and table tests: text and bytes a careless user or an attacker hands
the engine, and the check that an error never repeats any of it.

`echoes(exc, secret)` is the criterion: no 8 consecutive characters of the secret part of the input in the
message, `args`, `repr`, attributes or chained exceptions of the error (the same whole-exception text the
suite's leak scan reads). Armour that every key shares (`-----BEGIN … KEY-----`) is not secret and is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from hypothesis import strategies as st

from tests.support import keys
from tests.support.leaks import exception_text, observe_exception

T = TypeVar("T")
ECHO_WINDOW = 8

# Text every key of a kind shares, or that the engine's own messages say: never a sign of an echo.
_PUBLIC = (
    "-----BEGIN EC PRIVATE KEY-----\n",
    "-----END EC PRIVATE KEY-----\n",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----END PRIVATE KEY-----\n",
    "-----BEGIN PUBLIC KEY-----\n",
    "-----END PUBLIC KEY-----\n",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "organizations/",
    "/apiKeys/",
)


def echoes(exc: BaseException, *secrets: str) -> list[str]:
    """The 8-character windows of `secrets` found anywhere in `exc` (empty when nothing is repeated)."""
    return echoes_in(exception_text(exc), *secrets)


def echoes_in(text: str, *secrets: str) -> list[str]:
    """The 8-character windows of `secrets` found in `text` (a command's output, say)."""
    # the text is short and the input may be huge: slide over the text, search the input
    windows = {text[i : i + ECHO_WINDOW] for i in range(len(text) - ECHO_WINDOW + 1)}
    return sorted(
        window
        for window in windows
        if window.strip()  # padding and alignment carry no secret
        and any(window in secret for secret in secrets)
        and not any(window in public for public in _PUBLIC)
    )


def attempt(
    call: Callable[[], T], error: type[Exception] | tuple[type[Exception], ...]
) -> tuple[T | None, Exception | None]:
    """`call()`'s value, or the `error` it raised (scanned by the leak scan like any expected error)."""
    try:
        return call(), None
    except error as exc:
        observe_exception(exc, "hostile input")
        return None, exc


def assert_clean(exc: Exception, *secrets: str) -> None:
    """Nothing chained to `exc` (a chained error may hold the input), no 8 characters of `secrets` in it."""
    assert exc.__cause__ is None, "a chained cause may hold the input"
    assert exc.__context__ is None, "a chained context may hold the input"
    leaked = echoes(exc, *secrets)
    assert not leaked, f"the error repeats the input: {leaked}"


# -- text ---------------------------------------------------------------------------------------------------

surrogates = st.integers(0xD800, 0xDFFF).map(chr)
controls = st.sampled_from(["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u2028"])
non_ascii = st.sampled_from(
    ["é", "\u00a0", "\ufeff", "\u200b", "\uff4d", "Ω", "😀", "\u0301", "\ufffd", "\u202e"]
)
every_character = st.characters(exclude_categories=())  # surrogates (category Cs) included
undecodable_bytes = st.binary(min_size=1, max_size=64).map(lambda b: b.decode("utf-8", "surrogateescape"))


def key_forms() -> list[str]:
    """Real private keys, in every form the portal and users hold them (generated now, never committed)."""
    es, ed = keys.new_es256_key(), keys.new_ed25519_key()
    return [*es.forms.values(), *ed.forms.values()]


KEY_FORMS = key_forms()


@st.composite
def damaged_key(draw: st.DrawFn) -> str:
    """A real key with hostile characters spliced in, cut, repeated or padded to a huge size."""
    key = draw(st.sampled_from(KEY_FORMS))
    damage = draw(st.sampled_from(["splice", "cut", "repeat", "pad"]))
    if damage == "cut":
        return key[: draw(st.integers(0, len(key)))]
    if damage == "repeat":
        return key * draw(st.integers(2, 200))
    if damage == "pad":
        return key + draw(st.sampled_from(["A", " ", "\n", "\\n"])) * draw(st.integers(16_000, 100_000))
    where = draw(st.integers(0, len(key)))
    bad = draw(st.text(st.one_of(surrogates, controls, non_ascii, every_character), min_size=1, max_size=4))
    return key[:where] + bad + key[where:]


hostile_text = st.one_of(
    damaged_key(),
    st.text(every_character, max_size=300),
    st.text(st.one_of(surrogates, controls, non_ascii), min_size=1, max_size=40),
    undecodable_bytes,
    st.integers(16_385, 400_000).map(lambda n: "A" * n),
    st.sampled_from(KEY_FORMS),
)

# -- key files ----------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(every_character, max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def _dumps(document: object) -> bytes:
    # ensure_ascii: a lone surrogate in a field is written as the "\udcXX" escape a hand-edited file carries
    return json.dumps(document).encode()


@st.composite
def hostile_key_file(draw: st.DrawFn) -> tuple[bytes, str]:
    """The bytes of a key file, and the secret part the errors must not repeat."""
    kind = draw(st.sampled_from(["fields", "types", "bytes", "nested", "prefixed", "escaped"]))
    if kind == "bytes":
        raw = draw(st.binary(max_size=2000))
        return raw, raw.decode("latin-1")
    if kind == "nested":
        depth = draw(st.integers(500, 200_000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        return (opener * depth + "1" + closer * depth).encode(), ""
    name = draw(
        st.one_of(st.just(f"organizations/{draw(st.uuids())}/apiKeys/{draw(st.uuids())}"), hostile_text)
    )
    private_key = draw(hostile_text)
    if kind == "types":
        field = draw(st.sampled_from(["name", "id", "privateKey"]))
        document: dict[str, object] = {"name": name, "privateKey": private_key}
        document[field] = draw(json_values)
        return _dumps(document), private_key if field != "privateKey" else ""
    raw = _dumps({draw(st.sampled_from(["name", "id"])): name, "privateKey": private_key})
    if kind == "prefixed":
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00", b" " * 70_000])) + raw
    if kind == "escaped":
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\\udcff", b"\\ud800", b"\\u0000", b"\xff", b"\xc3("]))
            + raw[at:]
        )
    return raw, private_key
