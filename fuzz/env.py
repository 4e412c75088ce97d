"""Credentials from the environment, as `CdpKey.from_env` and the worker (`engine.ops.credentials`) read them.

The fuzzer sets `COINBASE_API_KEY`, `COINBASE_API_SECRET` and `COINBASE_API_KEY_FILE` (and stray
variables): absent, empty, blank, its own text, or a real key damaged. The key file named is one of a few
this target writes in its own directory (a fuzzed path could name any file on the machine). Every refusal
is a `KeyFormatError` or a `ConfigError` that repeats none of the secret.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import atheris

from fuzz.harness import Case, Draw, Secret, main
from tests.support.keys import new_ed25519_key, new_es256_key

with atheris.instrument_imports(include=["engine.auth", "engine.keyfile", "engine.ops.credentials"]):
    from engine.auth import CdpKey
    from engine.errors import ConfigError, KeyFormatError
    from engine.ops import logs
    from engine.ops.config import CredentialsConfig, KeySource
    from engine.ops.credentials import read_credentials

DOCUMENTED = (KeyFormatError, ConfigError)
_CDP = [new_es256_key(), new_ed25519_key()]
KEY_FORMS = [form for key in _CDP for form in key.forms.values()]
KEY_NAMES = [key.name for key in _CDP]
NAMES = ["COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_API_KEY_FILE", "COINBASE_API_KEY_NAME"]
_SHM = "/dev/shm"  # noqa: S108 - a private directory is made below it
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-env-", dir=_SHM if os.path.isdir(_SHM) else None))
(_DIR / "good.json").write_text(json.dumps({"name": _CDP[0].name, "privateKey": _CDP[0].private_key}))
(_DIR / "empty.json").write_text("")
(_DIR / "dir").mkdir()
KEY_FILES = [str(_DIR / "good.json"), str(_DIR / "empty.json"), str(_DIR / "dir"), str(_DIR / "absent.json")]
_ENV_CONFIG = CredentialsConfig(source=KeySource.ENV)


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    environ: dict[str, str] = {}
    for _ in range(draw.int(0, 5)):
        name = draw.pick(NAMES)
        if name == "COINBASE_API_SECRET":
            value = draw.damage(draw.pick(KEY_FORMS)) if draw.flag() else draw.text(300)
        elif name == "COINBASE_API_KEY_FILE":
            value = draw.pick(KEY_FILES) + draw.pick(["", " ", "\n", "/", "\x00"])
        else:
            value = draw.pick([draw.pick(KEY_NAMES), draw.text(60), "", " "])
        environ[name] = value
    if "COINBASE_API_SECRET" in environ:
        environ["COINBASE_API_SECRET"] = secret(environ["COINBASE_API_SECRET"])
    secrets = [environ["COINBASE_API_SECRET"]] if "COINBASE_API_SECRET" in environ else []

    def call() -> object:
        try:
            credentials = read_credentials(_ENV_CONFIG, environ)
            credentials.signing_key()
        finally:
            logs._secrets.clear()  # each read registers the secret for redaction: keep the set small
        return CdpKey.from_env(environ).ws_jwt()

    return call, secrets


if __name__ == "__main__":
    main(case, DOCUMENTED)
