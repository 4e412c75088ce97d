"""The CDP key file (engine/keyfile.py), as `CdpKey.from_json_file` and the worker's credentials read it.

The fuzzer's bytes are the file, whole (every byte of it then counts as secret), or the fields of one
(`name` or `id`, `privateKey`, stray Exchange fields) with a real key, damaged, in `privateKey`. Every refusal
is a `KeyFormatError`; a file that loads must give a key that signs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

from fuzz.harness import Case, Draw, Secret, main
from tests.support.keys import new_ed25519_key, new_es256_key

with atheris.instrument_imports(include=["engine.auth", "engine.keyfile", "engine.ops.credentials"]):
    from engine.auth import CdpKey
    from engine.errors import ConfigError, KeyFormatError
    from engine.keyfile import parse_key_document
    from engine.ops import credentials, logs

DOCUMENTED = (KeyFormatError, ConfigError)
_CDP = [new_es256_key(), new_ed25519_key()]
KEY_FORMS = [form for key in _CDP for form in key.forms.values()]
WHERE = "the CDP key file 'key.json'"
# on tmpfs where there is one: each input is written, then loaded by the real loaders
_SHM = "/dev/shm"  # noqa: S108 - a private directory is made below it
KEY_FILE = (
    Path(tempfile.mkdtemp(prefix="fuzz-keyfile-", dir=_SHM if os.path.isdir(_SHM) else None)) / "key.json"
)
PREFIXES = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00", b" " * 70_000]
NAME_FIELDS = ["name", "id", "Name", ""]
EXTRA_FIELDS = ["passphrase", "secret", "privateKey", "name", "nickname"]


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    if draw.int(0, 3) == 0:
        as_text = draw.flag()
        raw = secret(draw.rest().decode("latin-1")).encode("latin-1")
        return _loads(raw, as_text), [raw.decode("latin-1")]
    private_key = secret(draw.damage(draw.pick(KEY_FORMS)) if draw.flag() else draw.text(300))
    document: dict[str, object] = {}
    for _ in range(draw.int(0, 4)):
        field = draw.pick(NAME_FIELDS) if draw.flag() else draw.text(12)
        document[field] = _value(draw, _CDP[0].name)
    if draw.int(0, 4):
        document["privateKey"] = private_key
    for _ in range(draw.int(0, 2)):
        document[draw.pick(EXTRA_FIELDS)] = _value(draw, "x")
    text = json.dumps(document, ensure_ascii=draw.flag())
    encoded = text.encode("utf-8", "surrogatepass")
    at = draw.int(0, len(encoded))
    raw = draw.pick(PREFIXES) + encoded[:at] + draw.bytes(4) + encoded[at:]
    return _loads(raw, draw.flag()), [private_key]


def _value(draw: Draw, typical: str) -> object:
    return draw.pick([typical, draw.text(40), None, 5, True, [], {}, "", " "])


def _loads(raw: bytes, as_text: bool) -> Callable[[], object]:
    def call() -> object:
        if as_text:  # the keyring hands the loader text, which may not even encode
            return parse_key_document(raw.decode("utf-8", "surrogateescape"), WHERE)
        KEY_FILE.write_bytes(raw)
        try:
            # the worker's loader: the same refusals, and the key's text registered for log redaction
            credentials.read_key_file(KEY_FILE)
        finally:
            logs._secrets.clear()  # a million registered secrets would only slow the run down
        return CdpKey.from_json_file(KEY_FILE).ws_jwt()

    return call


if __name__ == "__main__":
    main(case, DOCUMENTED)
