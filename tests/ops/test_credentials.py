"""Key sources: environment, key file, keyring; what each says when the key is missing or malformed."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from engine.errors import ConfigError, KeyFormatError
from engine.ops.config import CredentialsConfig, KeySource
from engine.ops.credentials import key_label, read_credentials, read_key_file
from tests.support.keys import new_ed25519_key, new_es256_key

ENV = CredentialsConfig(source=KeySource.ENV)


def test_environment_name_and_secret() -> None:
    key = new_es256_key()
    escaped = key.forms["sec1_pem_escaped"]
    creds = read_credentials(ENV, {"COINBASE_API_KEY": key.name, "COINBASE_API_SECRET": escaped})
    assert creds.name == key.name
    assert creds.private_key == escaped
    assert creds.has_escaped_newlines
    assert "COINBASE_API_KEY" in creds.origin
    assert escaped not in repr(creds)
    assert key.name not in repr(creds)


def test_a_key_that_does_not_parse_is_refused_naming_where_it_came_from() -> None:
    key = new_es256_key()
    mangled = key.private_key.replace("\n", "", 3)[:-40]  # armor intact, body cut: not a key
    creds = read_credentials(ENV, {"COINBASE_API_KEY": key.name, "COINBASE_API_SECRET": mangled})
    with pytest.raises(KeyFormatError) as caught:
        creds.signing_key()
    refused = caught.value
    assert str(refused).startswith("environment (COINBASE_API_KEY, COINBASE_API_SECRET): ")
    assert refused.__cause__ is None
    assert refused.__context__ is None
    body = "".join(line for line in mangled.splitlines() if not line.startswith("-----"))
    assert not any(body[i : i + 8] in str(refused) for i in range(len(body) - 8))


def test_environment_key_file(tmp_path: Path) -> None:
    key = new_ed25519_key()
    path = tmp_path / "cdp.json"
    path.write_text(json.dumps({"id": key.name, "privateKey": key.private_key}))
    path.chmod(0o600)
    creds = read_credentials(ENV, {"COINBASE_API_KEY_FILE": str(path)})
    assert (creds.name, creds.private_key) == (key.name, key.private_key)
    assert creds.warnings == ()
    assert not creds.has_escaped_newlines


def test_environment_missing_parts_say_which() -> None:
    with pytest.raises(ConfigError, match="COINBASE_API_SECRET is not set"):
        read_credentials(ENV, {"COINBASE_API_KEY": "organizations/o/apiKeys/k"})
    with pytest.raises(ConfigError, match="COINBASE_API_KEY is not set"):
        read_credentials(ENV, {"COINBASE_API_SECRET": new_es256_key().private_key})
    with pytest.raises(ConfigError, match="no API key in the environment"):
        read_credentials(ENV, {})


def test_key_file_source_and_permission_warning(tmp_path: Path) -> None:
    key = new_es256_key()
    path = tmp_path / "cdp.json"
    path.write_text(json.dumps(key.portal_json()))
    path.chmod(0o644)
    creds = read_credentials(CredentialsConfig(source=KeySource.FILE, file=path))
    assert creds.name == key.name
    if os.name == "posix":
        assert any("chmod 600" in w for w in creds.warnings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("-----BEGIN EC PRIVATE KEY-----\nnot json\n", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"privateKey": "x"}', 'no "name"'),
        ('{"name": "organizations/o/apiKeys/k"}', 'no "privateKey"'),
        ('{"key": "k", "secret": "c2VjcmV0", "passphrase": "p"}', "Coinbase Exchange"),
    ],
)
def test_key_file_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cdp.json"
    path.write_text(content)
    with pytest.raises(KeyFormatError, match=message) as caught:
        read_key_file(path)
    assert "not json" not in str(caught.value)  # the content is never echoed


def test_key_file_not_found_or_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_key_file(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="is a directory"):
        read_key_file(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("keyring") is not None, reason="the keyring extra is installed")
def test_keyring_source_without_the_extra_says_how_to_install() -> None:
    with pytest.raises(ConfigError, match=r"coinbase-engine\[keyring\]"):
        read_credentials(CredentialsConfig(source=KeySource.KEYRING))


def test_key_label_shows_only_the_end_of_the_key_id() -> None:
    assert key_label("organizations/org-123/apiKeys/abcdef-123456") == "…123456"
    assert "org-123" not in key_label("organizations/org-123/apiKeys/abcdef-123456")
