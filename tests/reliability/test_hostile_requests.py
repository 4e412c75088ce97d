"""Hostile requests, counted: forged, expired, replayed, misdirected, unsigned, oversized and malformed
credentials against each venue the simulator serves, and hostile signals against a worker's webhook, all on
127.0.0.1.

The tables are in `tests/support/hostile_auth.py`, one per kind of signature, shared by the venues that take
it: CDP JWTs by Advanced Trade REST and the perpetuals gateway's `public/auth` (over HTTP and WebSocket),
Exchange HMAC signatures by Exchange REST, signals by the webhook. Each request would place an order (or,
for `public/auth`, open a session that then tries to), so "refused" is checked where it matters: the venue's
status, no 5xx, no order in the simulator's ledger, and no 8 characters of the credential in the answer.
Each test prints one summary line: venue, cases, refused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.ops.config import parse_config
from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator
from engine.sim import Simulator
from engine.worker import Worker
from engine.worker.intake import QueueIntake
from tests.ops.conftest import RunningSim, running_sim
from tests.ops.worker_process import eventually
from tests.reliability.conftest import record
from tests.sim.conftest import quiet_config
from tests.support.hostile import echoes_in
from tests.support.hostile_auth import HMAC_ATTACKS, JWT_ATTACKS, SIGNAL_ATTACKS, Forge, hmac_headers
from tests.support.keys import new_es256_key, new_exchange_key, new_webhook_secret
from tests.support.leaks import observe

__all__ = ["running_sim"]  # the ops suite's fixture, used by the webhook test

ORDERS = "/api/v3/brokerage/orders"
BTC_PERP = "BTC_USDC-PERPETUAL"
HANG_S = 10.0


def _summary(venue: str, cases: int, refused: int, skipped: str = "") -> None:
    record(f"{venue}: {cases} cases, {refused} refused" + (f" ({skipped})" if skipped else ""))


@dataclass
class Served:
    sim: Simulator
    host: str
    port: int

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """One request as raw bytes on its own connection: (status, whole answer), (0, b"") if closed."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.authority}\r\n".encode()
        for name, value in headers.items():
            head += name.encode() + b": " + value.encode("utf-8", "surrogateescape") + b"\r\n"
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
            body
        )
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(head + body)
            answer = await asyncio.wait_for(reader.read(), HANG_S)
        except ConnectionResetError:  # refused before all was read
            answer = b""
        finally:
            writer.close()
        status_line = answer.split(b"\r\n", 1)[0].split(b" ")
        return (int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0), answer


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sim = Simulator(quiet_config())
    async with sim.serve() as base_url:
        host, port = base_url.split("://", 1)[1].rsplit(":", 1)
        yield Served(sim, host, int(port))


def _check(answer: bytes, *credentials: str) -> list[str]:
    text = answer.decode("latin-1")
    observe(text, "answer to a hostile request")
    leaked = echoes_in(text, *credentials)
    return [f"echoes {leaked[:3]}"] if leaked else []


def _advanced_order() -> bytes:
    config = {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "100.00"}}
    order = {"client_order_id": str(uuid.uuid4()), "product_id": "BTC-USD", "side": "BUY"}
    return json.dumps(order | {"order_configuration": config}).encode()


# ---- Advanced Trade REST: a JWT per request ----------------------------------------------------------------
async def test_advanced_trade_refuses_every_hostile_jwt(served: Served) -> None:
    key, stranger = new_es256_key(), new_es256_key()
    served.sim.register_cdp_key(key.name, key.public_key_pem)
    forge = Forge(key, stranger, f"POST {served.authority}{ORDERS}")
    failures: list[str] = []
    refused = 0
    for attack in JWT_ATTACKS:
        token = attack.forge(forge)
        status, answer = await served.send(
            "POST", ORDERS, {"Authorization": f"Bearer {token}"}, _advanced_order()
        )
        wanted = 400 if len(token) > 8190 else 401  # past aiohttp's 8190-byte header line: its 400
        problems = ([] if status == wanted else [f"status {status}, wanted {wanted}"]) + _check(answer, token)
        refused += not problems
        failures += [f"{attack.name}: {p}" for p in problems]
    # replayed: the first use places its order; the same token on a second order is refused
    token = forge.token()
    first, answer = await served.send("POST", ORDERS, {"Authorization": f"Bearer {token}"}, _advanced_order())
    assert first == 200, answer
    status, answer = await served.send(
        "POST", ORDERS, {"Authorization": f"Bearer {token}"}, _advanced_order()
    )
    problems = ([] if status == 401 else [f"status {status}"]) + _check(answer, token)
    refused += not problems
    failures += [f"replayed: {p}" for p in problems]
    _summary("Advanced Trade REST (JWT)", len(JWT_ATTACKS) + 1, refused)
    assert not failures, "\n".join(failures)
    assert len(served.sim.ledger) == 1, "a hostile token placed an order"


# ---- Exchange REST: an HMAC signature per request ----------------------------------------------------------
async def test_exchange_refuses_every_hostile_signature(served: Served) -> None:
    key, stranger = new_exchange_key(), new_exchange_key()
    served.sim.register_exchange_key(key.key, key.secret, key.passphrase)
    failures: list[str] = []
    refused = 0
    for attack in HMAC_ATTACKS:
        order = {"product_id": "BTC-USD", "side": "buy", "type": "limit", "size": "0.001", "price": "100.00"}
        body = json.dumps(order | {"client_oid": str(uuid.uuid4())}).encode()
        headers = attack.headers(key, stranger, "POST", "/orders", body)
        status, answer = await served.send("POST", "/orders", headers, body)
        problems = [] if status == attack.status else [f"status {status}, wanted {attack.status}"]
        problems += _check(answer, key.secret, key.passphrase, headers.get("CB-ACCESS-SIGN", ""))
        refused += not problems
        failures += [f"{attack.name}: {p}" for p in problems]
    # the control: the same request signed properly is placed
    body = json.dumps({"product_id": "BTC-USD", "side": "buy", "type": "limit", "size": "0.001",
                       "price": "100.00", "client_oid": str(uuid.uuid4())}).encode()  # fmt: skip
    status, answer = await served.send("POST", "/orders", hmac_headers(key, "POST", "/orders", body), body)
    assert status == 200, answer
    _summary("Exchange REST (HMAC)", len(HMAC_ATTACKS), refused)
    assert not failures, "\n".join(failures)
    assert len(served.sim.ledger) == 1, "a hostile signature placed an order"


# ---- the perpetuals gateway: public/auth over HTTP and over WebSocket --------------------------------------
def _gateway_attacks() -> list[Any]:
    return [attack for attack in JWT_ATTACKS if attack.needs != "uri"]  # its tokens carry no uri


_NO_URI = f"{sum(a.needs == 'uri' for a in JWT_ATTACKS)} wrong-uri rows do not apply: its tokens carry no uri"


def _auth_frame(token: str, request_id: int = 1) -> dict[str, Any]:
    params = {"grant_type": "coinbase_cdp", "token": token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "public/auth", "params": params}


def _refused_auth(reply: Any, oversized: bool) -> bool:
    """13004 (invalid credentials); for a token over 4096 characters -32602 (invalid params), or in a frame
    over 32 KB -32600 (invalid request)."""
    error = reply.get("error") if isinstance(reply, dict) else None
    codes = (-32602, -32600) if oversized else (13004,)
    return isinstance(error, dict) and "result" not in reply and error.get("code") in codes


async def test_the_gateway_refuses_every_hostile_jwt_over_http(served: Served) -> None:
    key, stranger = new_es256_key(), new_es256_key()
    served.sim.register_cdp_key(key.name, key.public_key_pem)
    forge = Forge(key, stranger, None)
    failures: list[str] = []
    refused = 0
    attacks = _gateway_attacks()
    for attack in attacks:
        token = attack.forge(forge)
        body = json.dumps(_auth_frame(token)).encode()
        status, answer = await served.send("POST", "/api/v2/public/auth", {}, body)
        reply = json.loads(answer.partition(b"\r\n\r\n")[2] or b"null")
        wanted = 400 if attack.oversized else 401
        problems = (
            [] if status == wanted and _refused_auth(reply, attack.oversized) else [f"{status} {reply}"]
        )
        problems += _check(answer, token)
        refused += not problems
        failures += [f"{attack.name}: {p}" for p in problems]
    token = forge.token()
    body = json.dumps(_auth_frame(token)).encode()
    first, answer = await served.send("POST", "/api/v2/public/auth", {}, body)
    assert first == 200, answer
    status, answer = await served.send("POST", "/api/v2/public/auth", {}, body)  # replayed
    reply = json.loads(answer.partition(b"\r\n\r\n")[2] or b"null")
    problems = ([] if status == 401 and _refused_auth(reply, False) else [f"{status} {reply}"]) + _check(
        answer, token
    )
    refused += not problems
    failures += [f"replayed: {p}" for p in problems]
    _summary("perpetuals gateway public/auth over HTTP (JWT)", len(attacks) + 1, refused, _NO_URI)
    assert not failures, "\n".join(failures)
    assert len(served.sim.ledger) == 0


async def test_the_gateway_refuses_every_hostile_jwt_over_websocket(served: Served) -> None:
    """After each refused `public/auth`, the same socket tries to buy: refused too, nothing placed."""
    key, stranger = new_es256_key(), new_es256_key()
    served.sim.register_cdp_key(key.name, key.public_key_pem)
    forge = Forge(key, stranger, None)
    failures: list[str] = []
    refused = 0
    attacks = _gateway_attacks()
    order = {"instrument_name": BTC_PERP, "amount": 0.01, "type": "limit", "price": 100}
    buy = {"jsonrpc": "2.0", "id": 2, "method": "private/buy", "params": order}
    replayed = forge.token()
    cases: list[tuple[str, str, bool]] = [(a.name, a.forge(forge), a.oversized) for a in attacks]
    cases += [("replayed", replayed, False)]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://{served.authority}/ws/api/v2") as ws:  # the replay's first use
            await ws.send_str(json.dumps(_auth_frame(replayed)))
            assert "result" in json.loads((await ws.receive(timeout=HANG_S)).data)
        for name, token, oversized in cases:
            async with http.ws_connect(f"http://{served.authority}/ws/api/v2", max_msg_size=0) as ws:
                await ws.send_str(json.dumps(_auth_frame(token)))
                auth_text = (await ws.receive(timeout=HANG_S)).data
                await ws.send_str(json.dumps(buy))
                buy_text = (await ws.receive(timeout=HANG_S)).data
            problems = (
                [] if _refused_auth(json.loads(auth_text), oversized) else [f"auth answered {auth_text}"]
            )
            if "error" not in json.loads(buy_text):
                problems.append(f"then bought: {buy_text}")
            problems += _check(f"{auth_text}\n{buy_text}".encode(), token)
            refused += not problems
            failures += [f"{name}: {p}" for p in problems]
    _summary("perpetuals gateway public/auth over WebSocket (JWT)", len(cases), refused, _NO_URI)
    assert not failures, "\n".join(failures)
    assert len(served.sim.ledger) == 0


# ---- the worker's webhook ----------------------------------------------------------------------------------
async def test_the_webhook_refuses_every_hostile_signal(running_sim: RunningSim, tmp_path: Path) -> None:
    sim = running_sim.sim
    key, webhook_secret = new_es256_key(), new_webhook_secret()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    config = parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "limits": {"max_retries": 0},
            "risk": {"products": ["BTC-USD"]},
            "signals": {"port": 0},
            "metrics": {"enabled": False},
            "journal": {"path": str(tmp_path / "journal.sqlite")},
        }
    )
    env = {"COINBASE_API_KEY": key.name, "COINBASE_API_SECRET": key.private_key,
           "ENGINE_WEBHOOK_SECRET": webhook_secret}  # fmt: skip
    worker = Worker(config, environ=env)
    authenticator = SignalAuthenticator([webhook_secret])

    def sign(body: bytes, timestamp: str | None) -> dict[str, str]:
        sent_at, signature = authenticator.sign(body, timestamp)
        return {TIMESTAMP_HEADER: sent_at, SIGNATURE_HEADER: signature}

    below = str(int(sim.markets["BTC-USD"].mid * 9 / 10))
    failures: list[str] = []
    refused = 0
    await worker.start()
    try:
        intake = worker.intake
        assert isinstance(intake, QueueIntake)
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
                async with http.post(f"{worker.webhook_url}/signals", data=body, headers=headers) as response:
                    return response.status, await response.text()

            for n, attack in enumerate(SIGNAL_ATTACKS):
                signal = {"id": f"hostile-{n}", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
                          "size": "0.01", "limit_price": below}  # fmt: skip
                body, headers = attack.send(sign, signal)
                status, text = await post(body, headers)
                problems = [] if status == attack.status else [f"status {status}, wanted {attack.status}"]
                problems += _check(text.encode(), webhook_secret, headers.get(SIGNATURE_HEADER, "") or "")
                refused += not problems
                failures += [f"{attack.name}: {p}" for p in problems]
            # replayed: the first is taken (and traded), the same signed request again is refused
            replay = {"id": "replayed", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit"}
            body = json.dumps(replay | {"size": "0.01", "limit_price": below}).encode()
            headers = sign(body, None)
            assert (await post(body, headers))[0] == 202
            status, text = await post(body, headers)
            problems = ([] if status == 409 else [f"status {status}"]) + _check(text.encode(), webhook_secret)
            refused += not problems
            failures += [f"replayed: {p}" for p in problems]

        async def settled() -> bool:
            return "replayed" in intake.outcomes

        await eventually(settled, timeout=30)
        assert set(intake.outcomes) == {"replayed"}, "a refused signal reached the intake"
    finally:
        await worker.stop()
    _summary("worker webhook (signals)", len(SIGNAL_ATTACKS) + 1, refused)
    assert not failures, "\n".join(failures)
    ledger = running_sim.ledger()
    assert len(sim.ledger) <= 1, ledger  # the replayed signal's one order, if the risk gate let it through
    assert all(len(statuses) == 1 for statuses in ledger.values()), ledger
