"""Loading CDP keys: every form Coinbase users hold loads; every bad form raises KeyFormatError that names the
problem and never echoes the input."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from engine.auth import CdpKey
from engine.errors import KeyFormatError
from tests.signer.conftest import decode
from tests.support.keys import SECRETS, TestKey, new_ed25519_key, new_es256_key


@pytest.mark.parametrize("make_key", [new_es256_key, new_ed25519_key], ids=["ES256", "EdDSA"])
def test_every_key_form_loads_and_signs_verifiably(make_key: type[TestKey]) -> None:
    test_key = make_key()
    for form_name, text in test_key.forms.items():
        key = CdpKey(test_key.name, text)
        assert key.algorithm == test_key.algorithm, form_name
        assert key.name == test_key.name
        assert key.public_key_pem() == test_key.public_key_pem, form_name
        header, claims = decode(key.rest_jwt("GET", "/api/v3/brokerage/accounts"), test_key)
        assert header["kid"] == test_key.name
        assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts"
        decode(key.ws_jwt(), test_key)


def test_repr_shows_name_and_algorithm_only(test_key: TestKey) -> None:
    key = CdpKey(test_key.name, test_key.private_key)
    assert repr(key) == f"CdpKey(name={test_key.name!r}, algorithm={test_key.algorithm!r})"


def test_from_json_file_reads_name_or_id(tmp_path: Path, test_key: TestKey) -> None:
    portal = tmp_path / "cdp_api_key.json"
    portal.write_text(json.dumps(test_key.portal_json()))
    assert CdpKey.from_json_file(portal).name == test_key.name
    newer = tmp_path / "ed25519_download.json"
    newer.write_text(json.dumps({"id": test_key.name, "privateKey": test_key.private_key}))
    key = CdpKey.from_json_file(str(newer))
    assert isinstance(key, CdpKey)
    assert key.name == test_key.name
    assert key.algorithm == test_key.algorithm


def test_from_json_file_errors_never_echo_the_file(tmp_path: Path) -> None:
    test_key = new_es256_key()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(test_key.portal_json())[:-10])
    with pytest.raises(KeyFormatError, match="not JSON") as caught:
        CdpKey.from_json_file(broken)
    # raised after the decoder's error was dropped: nothing in the chain holds the document
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    no_key = tmp_path / "no_key.json"
    no_key.write_text(json.dumps({"name": test_key.name}))
    with pytest.raises(KeyFormatError, match="privateKey"):
        CdpKey.from_json_file(no_key)
    with pytest.raises(KeyFormatError, match="could not read"):
        CdpKey.from_json_file(tmp_path / "missing.json")


def test_from_env_pair_file_and_errors(tmp_path: Path) -> None:
    test_key = new_ed25519_key()
    env = {"COINBASE_API_KEY": test_key.name, "COINBASE_API_SECRET": test_key.private_key}
    assert CdpKey.from_env(env).algorithm == "EdDSA"
    path = tmp_path / "key.json"
    path.write_text(json.dumps(test_key.portal_json()))
    assert CdpKey.from_env({"COINBASE_API_KEY_FILE": str(path)}).name == test_key.name
    with pytest.raises(KeyFormatError, match="COINBASE_API_SECRET is not set"):
        CdpKey.from_env({"COINBASE_API_KEY": test_key.name, "COINBASE_API_KEY_FILE": str(path)})
    with pytest.raises(KeyFormatError, match="no CDP API key in the environment"):
        CdpKey.from_env({})


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    test_key = new_es256_key()
    monkeypatch.setenv("COINBASE_API_KEY", test_key.name)
    monkeypatch.setenv("COINBASE_API_SECRET", test_key.forms["sec1_pem_escaped"])
    assert CdpKey.from_env().public_key_pem() == test_key.public_key_pem


def _pem(key: object, fmt: serialization.PrivateFormat, password: bytes | None = None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


def _bad_keys() -> dict[str, str]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    k1 = ec.generate_private_key(ec.SECP256K1())
    p256 = ec.generate_private_key(ec.SECP256R1())
    trad, pkcs8 = serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8
    seed_a = ed25519.Ed25519PrivateKey.generate()
    public_b = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = serialization.Encoding.Raw
    mismatched = seed_a.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    mismatched += public_b.public_bytes(raw, serialization.PublicFormat.Raw)
    wrong_length = b"\x01" + secrets.token_bytes(47)
    sec1 = _pem(p256, trad)
    return {
        "rsa_traditional": _pem(rsa_key, trad),
        "rsa_pkcs8": _pem(rsa_key, pkcs8),
        "p384_sec1": _pem(p384, trad),
        "p384_pkcs8": _pem(p384, pkcs8),
        "secp256k1_sec1": _pem(k1, trad),
        "secp256k1_pkcs8": _pem(k1, pkcs8),
        "encrypted_pkcs8": _pem(p256, pkcs8, b"correct horse"),
        "encrypted_sec1": _pem(p256, trad, b"correct horse"),
        "public_key": p256.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        "truncated_pem": sec1[: len(sec1) // 2],
        "truncated_body": sec1.replace("-----END", "AAAA\n-----END").replace(sec1.splitlines()[2], "", 1),
        "not_base64": "%%" + secrets.token_hex(24) + "!!",
        "wrong_length_base64": base64.b64encode(wrong_length).decode(),
        "mismatched_ed25519_64": base64.b64encode(mismatched).decode(),
        "empty": "",
        "whitespace": " \n\t ",
    }


BAD_KEYS = _bad_keys()
for _text in BAD_KEYS.values():  # the session-end scan looks for these too
    for _line in _text.splitlines():
        if len(_line) >= 16 and not _line.startswith("-----"):
            SECRETS.add(_line)


def _input_fragments(text: str, width: int = 8) -> set[str]:
    """Every `width`-character window of the key material (PEM armour and header lines excluded)."""
    body = "".join(
        line.strip() for line in text.splitlines() if not line.startswith("-----") and ":" not in line
    )
    return {body[i : i + width] for i in range(max(0, len(body) - width + 1))}


EXPECTED_MESSAGE = {
    "rsa_traditional": "RSA key",
    "rsa_pkcs8": "RSA key",
    "p384_sec1": "P-384",
    "p384_pkcs8": "P-384",
    "secp256k1_sec1": "secp256k1",
    "secp256k1_pkcs8": "secp256k1",
    "encrypted_pkcs8": "encrypted",
    "encrypted_sec1": "encrypted",
    "public_key": "public key",
    "truncated_pem": "truncated",
    "truncated_body": "truncated",
    "not_base64": "neither a PEM block nor base64",
    "wrong_length_base64": "wrong number of bytes",
    "mismatched_ed25519_64": "does not match its seed",
    "empty": "empty",
    "whitespace": "empty",
}


@pytest.mark.parametrize("form", sorted(BAD_KEYS))
def test_bad_key_is_refused_with_a_fix_and_without_echoing_input(form: str) -> None:
    text = BAD_KEYS[form]
    with pytest.raises(KeyFormatError) as caught:
        CdpKey("organizations/o/apiKeys/k", text)
    message = str(caught.value)
    assert EXPECTED_MESSAGE[form] in message
    assert ":" in message, "the message should say how to fix it"
    assert isinstance(caught.value, ValueError)
    leaked = {f for f in _input_fragments(text) if f in message or f in repr(caught.value)}
    assert not leaked


def test_empty_name_is_refused() -> None:
    with pytest.raises(KeyFormatError, match="key name is empty"):
        CdpKey("  ", new_ed25519_key().private_key)
