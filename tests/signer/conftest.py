"""Fixtures for the signer suites: keys generated at run time, loaded through engine.auth."""

from __future__ import annotations

import jwt
import pytest

from engine.auth import CdpKey
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key


@pytest.fixture(params=["ES256", "EdDSA"])
def test_key(request: pytest.FixtureRequest) -> TestKey:
    return new_es256_key() if request.param == "ES256" else new_ed25519_key()


@pytest.fixture
def cdp_key(test_key: TestKey) -> CdpKey:
    return CdpKey(test_key.name, test_key.private_key)


def decode(token: str, test_key: TestKey) -> tuple[dict[str, object], dict[str, object]]:
    """Verify `token` with PyJWT + cryptography (independent of the engine) and return (header, claims)."""
    claims = jwt.decode(
        token,
        test_key.public_key_pem,
        algorithms=[test_key.algorithm],
        options={"verify_nbf": False, "verify_exp": False, "verify_aud": False},
    )
    return jwt.get_unverified_header(token), claims
