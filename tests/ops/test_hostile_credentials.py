"""Hostile key material where the worker and `engine doctor` read it: the environment, the key file, the
keyring's text. Loading gives a key, a `ConfigError` (nothing where it looked) or a `KeyFormatError`, never
anything that repeats the input; `engine worker` and `engine doctor` given such a key exit 2 with one clean
line or a failed check with its fix, never a traceback.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.doctor import Status, doctor_exit_code, render, run_doctor
from engine.errors import ConfigError, KeyFormatError
from engine.keyfile import parse_key_document
from engine.ops.config import CredentialsConfig, KeySource, parse_config
from engine.ops.credentials import Credentials, read_credentials, read_key_file
from tests.support import hostile
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key
from tests.support.leaks import observe

ROOT = Path(__file__).resolve().parents[2]
ENV = CredentialsConfig(source=KeySource.ENV)
ES256 = new_es256_key()
ED25519 = new_ed25519_key()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNREACHABLE = "http://127.0.0.1:9"  # never dialled: every case here fails before the first request


def _env(key: TestKey, secret: str, name: str | None = None) -> dict[str, str]:
    return {"COINBASE_API_KEY": key.name if name is None else name, "COINBASE_API_SECRET": secret}


def load(config: CredentialsConfig, environ: dict[str, str]) -> object:
    """The worker's start-up: read the credentials, then parse them into the signing key."""
    credentials: Credentials = read_credentials(config, environ)
    return credentials.signing_key()


def splice(text: str, bad: str) -> str:
    return text[: len(text) // 2] + bad + text[len(text) // 2 :]


# -- tables: the worker's loading, from each source ----------------------------------------------------------

HOSTILE_SECRETS = {
    "lone surrogate (the issue's example)": lambda k: splice(k, "\udcff"),
    "surrogateescape of 0xff": lambda k: splice(k, b"\xff".decode("utf-8", "surrogateescape")),
    "surrogateescape of CESU-8": lambda k: k + b"\xed\xa0\x80".decode("utf-8", "surrogateescape"),
    "high surrogate": lambda k: "\ud800" + k,
    "NUL": lambda k: splice(k, "\x00"),
    "ANSI escape": lambda k: splice(k, "\x1b[2J"),
    "DEL": lambda k: splice(k, "\x7f"),
    "no-break space": lambda k: splice(k, "\u00a0"),
    "byte-order mark": lambda k: "\ufeff" + k,
    "zero-width space": lambda k: splice(k, "\u200b"),
    "emoji": lambda k: splice(k, "\U0001f600"),
    "huge": lambda k: k + "A" * 20_000,
}


@pytest.mark.parametrize("damage", HOSTILE_SECRETS.values(), ids=HOSTILE_SECRETS.keys())
@pytest.mark.parametrize("key", [ES256, ED25519], ids=["ES256", "EdDSA"])
def test_worker_loading_from_the_environment(key: TestKey, damage: object) -> None:
    secret = damage(key.private_key)  # type: ignore[operator]
    with pytest.raises(KeyFormatError) as caught:
        load(ENV, _env(key, secret))
    hostile.assert_clean(caught.value, secret, key.private_key)
    with pytest.raises(KeyFormatError) as caught:
        load(ENV, _env(key, key.private_key, name=damage(key.name)))  # type: ignore[operator]
    hostile.assert_clean(caught.value, key.private_key)


@pytest.mark.parametrize("damage", HOSTILE_SECRETS.values(), ids=HOSTILE_SECRETS.keys())
def test_worker_loading_from_a_key_file_and_the_keyrings_text(tmp_path: Path, damage: object) -> None:
    secret = damage(ES256.private_key)  # type: ignore[operator]
    document = json.dumps({"name": ES256.name, "privateKey": secret})  # surrogates as "\udcXX" escapes
    path = tmp_path / "cdp.json"
    path.write_text(document)
    path.chmod(0o600)
    with pytest.raises(KeyFormatError) as caught:
        load(CredentialsConfig(source=KeySource.FILE, file=path), {})
    hostile.assert_clean(caught.value, secret, ES256.private_key)
    # the keyring hands back text: the same document, and the same text with raw surrogates in it
    for text in (document, document.replace("\\udcff", "\udcff")):
        value, error = hostile.attempt(
            lambda text=text: parse_key_document(text, "OS keyring"), KeyFormatError
        )
        if error is not None:
            hostile.assert_clean(error, secret, ES256.private_key)
            continue
        assert value is not None
        with pytest.raises(KeyFormatError) as caught:
            Credentials(value.name, value.private_key, "OS keyring").signing_key()
        hostile.assert_clean(caught.value, secret, ES256.private_key)


BAD_FILES = {
    "invalid UTF-8": b'{"name": "n", "privateKey": "\xff\xfe"}',
    "UTF-16 as PowerShell writes it": json.dumps(ES256.portal_json()).encode("utf-16"),
    "deeply nested": b"[" * 50_000 + b"]" * 50_000,
    "nested under privateKey": b'{"name": "n", "privateKey": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "name is a list": json.dumps({"name": ["a"], "privateKey": ES256.private_key}).encode(),
    "privateKey is a number": json.dumps({"name": ES256.name, "privateKey": 7}).encode(),
    "empty": b"",
    "lone surrogate escape": b'{"name": "n", "privateKey": "\\udcff"}',
    "NUL escape": json.dumps({"name": ES256.name, "privateKey": ES256.private_key + "\x00"}).encode(),
    "over 64 KiB": b" " * 70_000 + json.dumps(ES256.portal_json()).encode(),
}


@pytest.mark.parametrize("raw", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_key_files_are_key_format_errors(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "cdp.json"
    path.write_bytes(raw)
    path.chmod(0o600)
    with pytest.raises(KeyFormatError) as caught:
        load(CredentialsConfig(source=KeySource.FILE, file=path), {})
    hostile.assert_clean(caught.value, ES256.private_key)
    if not str(caught.value).startswith("the private key"):  # the file itself is bad, not the key in it
        assert str(path) in str(caught.value)


def test_a_key_file_path_with_an_undecodable_byte_is_named_printably(tmp_path: Path) -> None:
    path = Path(os.fsdecode(bytes(tmp_path) + b"/cdp-\xff.json"))
    with pytest.raises(ConfigError, match="not found") as caught:
        read_key_file(path)
    str(caught.value).encode("utf-8")  # printable: no lone surrogate to crash a log handler or a terminal
    sparse = tmp_path / "sparse.json"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)
    with pytest.raises(KeyFormatError, match="larger than 64 KiB"):
        read_key_file(sparse)


# -- properties: the worker's loading and doctor's key check -------------------------------------------------

names = st.one_of(st.just(ES256.name), st.just(ED25519.name), hostile.hostile_text)


@PROPERTY
@given(name=names, secret=hostile.hostile_text)
def test_worker_loading_takes_any_environment(name: str, secret: str) -> None:
    key, error = hostile.attempt(
        lambda: load(ENV, _env(ES256, secret, name=name)), (KeyFormatError, ConfigError)
    )
    if error is not None:
        hostile.assert_clean(error, secret, name)
    else:
        assert key is not None


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile_credentials")


@PROPERTY
@given(case=hostile.hostile_key_file())
def test_worker_loading_takes_any_key_file(key_dir: Path, case: tuple[bytes, str]) -> None:
    raw, secret = case
    path = key_dir / "cdp.json"
    path.write_bytes(raw)
    path.chmod(0o600)
    config = CredentialsConfig(source=KeySource.FILE, file=path)
    _, error = hostile.attempt(lambda: load(config, {}), KeyFormatError)
    if error is not None:
        hostile.assert_clean(error, secret)


def _doctor(environ: dict[str, str]) -> tuple[list[object], str]:
    config = parse_config({"exchange": {"base_url": UNREACHABLE}})
    checks = asyncio.run(run_doctor(config, environ=environ, timeout_s=1.0))
    text = io.StringIO()
    render(checks, text)
    observe(text.getvalue(), "doctor output")
    return list(checks), text.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, secret=hostile.hostile_text.filter(lambda s: s not in hostile.KEY_FORMS))
def test_doctor_takes_any_key_and_says_how_to_fix_it(name: str, secret: str) -> None:
    checks, output = _doctor(_env(ES256, secret, name=name))
    assert not hostile.echoes_in(output, secret), hostile.echoes_in(output, secret)
    output.encode("utf-8")  # printable to any terminal
    by_name = {c.name: c for c in checks}  # type: ignore[attr-defined]
    failed = [c for c in checks if c.status is Status.FAIL]  # type: ignore[attr-defined]
    if by_name["credentials"].status is Status.FAIL or by_name["key format"].status is Status.FAIL:
        assert doctor_exit_code(checks) == 2  # type: ignore[arg-type]
        assert all(c.fix for c in failed), failed


def test_doctor_on_the_issues_example_fails_the_key_with_a_fix() -> None:
    secret = splice(ES256.private_key, "\udcff")
    checks, output = _doctor(_env(ES256, secret))
    assert doctor_exit_code(checks) == 2  # type: ignore[arg-type]
    assert "FAIL  key format" in output
    assert "download its JSON again" in output
    assert not hostile.echoes_in(output, secret)


# -- the commands, as a shell runs them ----------------------------------------------------------------------

WORKER_TOML = """
[exchange]
base_url = "{base_url}"
[credentials]
source = "{source}"
{file}
[risk]
products = ["BTC-USD"]
max_order_size = "1"
[signals]
port = 0
[metrics]
port = 0
[journal]
path = "journal.sqlite"
"""

# What a shell can put in an environment variable: bytes (no NUL), decoded by Python with surrogateescape.
ENV_BYTES = {
    "an invalid UTF-8 byte": lambda k: k[:40] + b"\xff" + k[40:],
    "an escape sequence": lambda k: k[:40] + b"\x1b[31m" + k[40:],
    "UTF-8 no-break space": lambda k: k[:40] + "\u00a0".encode() + k[40:],
}


def _run(command: str, workdir: Path, environ: dict[bytes, bytes]) -> subprocess.CompletedProcess[bytes]:
    base = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("COINBASE_")}
    base[b"PYTHONPATH"] = str(ROOT).encode()
    base[b"ENGINE_WEBHOOK_SECRET"] = b"w" * 32
    return subprocess.run(
        [sys.executable, "-m", "engine", command, "--config", "worker.toml"],
        env={**base, **environ}, cwd=workdir, capture_output=True, timeout=120, check=False,
    )  # fmt: skip


def _assert_clean_exit(process: subprocess.CompletedProcess[bytes], command: str, *secrets: str) -> str:
    stdout, stderr = process.stdout.decode(errors="replace"), process.stderr.decode(errors="replace")
    observe(stdout + stderr, f"engine {command} output")
    assert process.returncode == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    assert not hostile.echoes_in(stdout + stderr, *secrets)
    return stdout if command == "doctor" else stderr


@pytest.mark.parametrize("damage", ENV_BYTES.values(), ids=ENV_BYTES.keys())
def test_worker_and_doctor_exit_2_on_a_hostile_environment_key(tmp_path: Path, damage: object) -> None:
    (tmp_path / "worker.toml").write_text(WORKER_TOML.format(base_url=UNREACHABLE, source="env", file=""))
    secret = damage(ES256.private_key.encode())  # type: ignore[operator]
    environ = {b"COINBASE_API_KEY": ES256.name.encode(), b"COINBASE_API_SECRET": secret}
    shown = secret.decode("utf-8", "surrogateescape")
    stderr = _assert_clean_exit(_run("worker", tmp_path, environ), "worker", shown, ES256.private_key)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        "engine worker: cannot start: environment (COINBASE_API_KEY, COINBASE_API_SECRET): the private key"
    ), stderr
    stdout = _assert_clean_exit(_run("doctor", tmp_path, environ), "doctor", shown, ES256.private_key)
    assert "FAIL  key format" in stdout
    assert "fix: " in stdout


@pytest.mark.parametrize(
    "raw", [BAD_FILES["deeply nested"], BAD_FILES["lone surrogate escape"]], ids=["nested", "surrogate"]
)
def test_worker_and_doctor_exit_2_on_a_hostile_key_file(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "cdp.json").write_bytes(raw)
    (tmp_path / "cdp.json").chmod(0o600)
    config = WORKER_TOML.format(base_url=UNREACHABLE, source="file", file='file = "cdp.json"')
    (tmp_path / "worker.toml").write_text(config)
    stderr = _assert_clean_exit(_run("worker", tmp_path, {}), "worker", ES256.private_key)
    assert stderr.strip().splitlines()[-1].startswith("engine worker: cannot start: key file"), stderr
    stdout = _assert_clean_exit(_run("doctor", tmp_path, {}), "doctor", ES256.private_key)
    assert "FAIL  credentials" in stdout
    assert "fix: point [credentials].file" in stdout
