"""Fixtures for the simulator suite: a served simulator, TLS from a throwaway CA, and token minting with PyJWT
(a client no one here wrote), so the simulator is checked against tokens it did not make itself."""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from engine.sim import RateLimits, SimConfig, Simulator
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key


def mint(
    key: TestKey,
    uri: str | None,
    *,
    nbf: float | None = None,
    lifetime: int = 120,
    nonce: str | None = None,
    extra_claims: dict[str, Any] | None = None,
    use_uris: bool = False,
) -> str:
    """A CDP JWT as coinbase-advanced-py builds it (or with `uris`, as ccxt's EdDSA path does)."""
    private = serialization.load_pem_private_key(key.forms["pkcs8_pem"].encode(), password=None)
    start = int(time.time() if nbf is None else nbf)
    claims: dict[str, Any] = {"sub": key.name, "iss": "cdp", "nbf": start, "exp": start + lifetime}
    if uri is not None:
        if use_uris:
            claims["uris"] = [uri]
        else:
            claims["uri"] = uri
    claims.update(extra_claims or {})
    headers = {"kid": key.name, "nonce": nonce or secrets.token_hex()}
    return jwt.encode(claims, private, algorithm=key.algorithm, headers=headers)  # type: ignore[arg-type]


@dataclass
class Served:
    sim: Simulator
    base_url: str
    http: aiohttp.ClientSession
    key: TestKey

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    def auth(self, method: str, path: str, key: TestKey | None = None, **kw: Any) -> dict[str, str]:
        uri = f"{method} {self.host}{path.split('?')[0]}"
        return {"Authorization": "Bearer " + mint(key or self.key, uri, **kw)}

    async def call(
        self, method: str, path: str, body: Any = None, key: TestKey | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base_url + path, json=body, headers=self.auth(method, path, key)
        ) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text


def quiet_config(**overrides: Any) -> SimConfig:
    """No timer-driven market moves and no rate limits: a test moves the market itself."""
    fields: dict[str, Any] = {"seed": 7, "tick_interval_s": 0, "rate_limits": RateLimits(enabled=False)}
    fields.update(overrides)
    return SimConfig(**fields)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sim = Simulator(quiet_config())
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url, aiohttp.ClientSession() as http:
        yield Served(sim, base_url, http, key)


@dataclass
class Tls:
    ca_path: Path
    server_context: ssl.SSLContext
    cert_path: Path
    key_path: Path


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return Tls(ca_path, context, cert_path, key_path)


__all__ = ["Served", "mint", "new_ed25519_key", "new_es256_key", "quiet_config"]
