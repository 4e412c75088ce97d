"""Key material in every form: `CdpKey` (PEM, escaped PEM, base64 Ed25519) and `ExchangeKey` with its headers.

Real keys, generated now, are one starting point the fuzzer damages; its own text is the other. A key the
signing core takes must also sign; anything else is a `KeyFormatError` (or, for a request `headers` cannot
sign, `InvalidRequest`) that repeats none of the secret.
"""

from __future__ import annotations

import atheris

from fuzz.harness import Case, Draw, Secret, main
from tests.support.keys import new_ed25519_key, new_es256_key, new_exchange_key

with atheris.instrument_imports(include=["engine.auth", "engine.keyfile"]):
    from engine.auth import CdpKey, ExchangeKey
    from engine.errors import InvalidRequest, KeyFormatError

DOCUMENTED = (KeyFormatError, InvalidRequest)
_CDP = [new_es256_key(), new_ed25519_key()]
KEY_FORMS = [form for key in _CDP for form in key.forms.values()]
KEY_NAMES = [key.name for key in _CDP]
_EXCHANGE = new_exchange_key()
METHODS = ["GET", "POST", "DELETE", "PUT", "get", "", "G ET", "\x00"]


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    if draw.flag():
        return _cdp(draw, secret)
    return _exchange(draw, secret)


def _cdp(draw: Draw, secret: Secret) -> Case:
    name = draw.damage(draw.pick(KEY_NAMES)) if draw.flag() else draw.text(80)
    private_key = secret(draw.damage(draw.pick(KEY_FORMS)) if draw.flag() else draw.text(400))
    path = "/" + draw.ascii(40)

    def call() -> object:
        key = CdpKey(name, private_key)
        return key.rest_jwt("GET", path), key.ws_jwt()

    return call, [private_key]


def _exchange(draw: Draw, secret: Secret) -> Case:
    key_id = draw.damage(_EXCHANGE.key) if draw.flag() else draw.text(40)
    api_secret = secret(draw.damage(_EXCHANGE.secret) if draw.flag() else draw.text(120))
    passphrase = secret(draw.damage(_EXCHANGE.passphrase) if draw.flag() else draw.text(40))
    method = draw.pick(METHODS) if draw.flag() else draw.text(8)
    path = draw.pick(["/orders", "/accounts?limit=1"]) if draw.flag() else draw.text(40)
    body = draw.bytes(64)
    timestamp: float | str | None = draw.pick([None, draw.float(), draw.text(20), "1700000000.5"])

    def call() -> object:
        return ExchangeKey(key_id, api_secret, passphrase).headers(method, path, body, timestamp)

    return call, [s for s in (api_secret, passphrase) if s]


if __name__ == "__main__":
    main(case, DOCUMENTED)
