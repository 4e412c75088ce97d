"""The webhook, served on loopback and called over HTTP: good signals are taken, and every refusal — bad,
stale or future signature, replay, malformed, oversize, queue full — answers its status and does nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator, SignalAuthError
from engine.signals.intake import SignalQueue, SignalSink
from engine.signals.model import parse_signal
from engine.signals.replay import LocalReplayGuard, RedisReplayGuard, ReplayGuard
from engine.signals.stream import SignalStream, stream_keys
from engine.signals.webhook import SignalWebhook
from tests.support.keys import new_webhook_secret
from tests.support.leaks import observe


def signal_body(signal_id: str = "tv-1", **fields: object) -> bytes:
    document = {
        "id": signal_id,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_type": "market",
        "quote_size": "10",
    }
    return orjson.dumps(document | fields)


@dataclass
class Hook:
    url: str
    http: aiohttp.ClientSession
    auth: SignalAuthenticator
    webhook: SignalWebhook
    queue: SignalQueue

    async def post(
        self, body: bytes, *, timestamp: str | None = None, signature: str | None = None
    ) -> tuple[int, dict[str, object], Mapping[str, str]]:
        ts, sig = self.auth.sign(body, timestamp)
        headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature if signature is not None else sig}
        headers["Content-Type"] = "application/json"
        async with self.http.post(self.url + "/signals", data=body, headers=headers) as response:
            text = await response.text()
            observe(text, "webhook response")
            return response.status, orjson.loads(text) if text else {}, response.headers


async def serve_hook(
    sink: SignalSink | None = None,
    guard: ReplayGuard | None = None,
    secret: str | None = None,
    **kwargs: float,
) -> AsyncIterator[Hook]:
    auth = SignalAuthenticator([secret or new_webhook_secret()])
    queue = SignalQueue(maxsize=4)
    webhook = SignalWebhook(auth, guard or LocalReplayGuard(), sink or queue, **kwargs)
    async with webhook.serve() as url, aiohttp.ClientSession() as http:
        yield Hook(url, http, auth, webhook, queue)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async for served in serve_hook():
        yield served


async def test_accepts_a_signed_signal(hook: Hook) -> None:
    assert hook.url.startswith("http://127.0.0.1:")
    status, body, _ = await hook.post(signal_body())
    assert status == 202
    assert body["status"] == "accepted"
    assert body["id"] == "tv-1"
    assert hook.queue.get_nowait() == parse_signal(signal_body())


@pytest.mark.parametrize(
    ("timestamp_offset", "signature", "reason"),
    [
        (0, "00" * 32, "signature"),
        (-31, None, "stale"),
        (31, None, "future"),
        (0, "", "missing"),
    ],
)
async def test_unauthenticated_is_401_and_does_nothing(
    hook: Hook, timestamp_offset: int, signature: str | None, reason: str
) -> None:
    timestamp = str(int(time.time()) + timestamp_offset)
    status, body, _ = await hook.post(signal_body(), timestamp=timestamp, signature=signature)
    assert status == 401
    assert body == {"error": "unauthenticated", "reason": reason}
    assert hook.queue.depth == 0
    # Not even the id was spent: the same signal, properly signed, still goes through.
    status, _, _ = await hook.post(signal_body())
    assert status == 202


async def test_a_signature_over_other_bytes_fails(hook: Hook) -> None:
    _, signature = hook.auth.sign(signal_body(quote_size="10"))
    status, _, _ = await hook.post(signal_body(quote_size="1000"), signature=signature)
    assert status == 401
    assert hook.queue.depth == 0


async def test_a_replayed_id_is_409(hook: Hook) -> None:
    assert (await hook.post(signal_body()))[0] == 202
    status, body, _ = await hook.post(signal_body(quote_size="11"))  # a fresh signature, an old id
    assert status == 409
    assert body["id"] == "tv-1"
    assert hook.queue.depth == 1


async def test_malformed_is_400_naming_the_field(hook: Hook) -> None:
    status, body, _ = await hook.post(signal_body(side="LONG"))
    assert status == 400
    assert body["field"] == "side"
    status, body, _ = await hook.post(b"{not json")
    assert (status, body["field"]) == (400, "body")
    assert hook.queue.depth == 0


async def test_oversize_body_is_413() -> None:
    async for hook in serve_hook(max_body_bytes=512):
        status, _, _ = await hook.post(signal_body(tag="x" * 600))
        assert status == 413
        assert hook.queue.depth == 0
        assert hook.webhook.refused["too_large"] == 1


async def test_queue_full_is_503_with_retry_after_and_the_id_stays_usable(hook: Hook) -> None:
    for n in range(4):
        assert (await hook.post(signal_body(f"s-{n}")))[0] == 202
    status, body, headers = await hook.post(signal_body("s-4"))
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body["id"] == "s-4"
    hook.queue.get_nowait()
    assert (await hook.post(signal_body("s-4")))[0] == 202  # the platform's retry is taken, not a 409
    assert hook.webhook.refused["full"] == 1
    assert hook.webhook.accepted == 5


async def test_publishes_to_the_stream_and_replicas_share_the_replay_guard(
    redis_client: aioredis.Redis,
) -> None:
    stream = SignalStream(redis_client, namespace="t")
    guard = RedisReplayGuard(redis_client, namespace="t")
    secret = new_webhook_secret()
    async for first in serve_hook(stream, guard, secret):
        async for second in serve_hook(stream, RedisReplayGuard(redis_client, namespace="t"), secret):
            status, body, _ = await first.post(signal_body("shared-1"))
            assert status == 202
            assert "-" in str(body["receipt"])  # a stream entry id
            assert (await second.post(signal_body("shared-1")))[0] == 409
    entries = await redis_client.xrange(stream_keys("t")[0])
    assert [parse_signal(fields[b"signal"]).id for _, fields in entries] == ["shared-1"]


async def test_secret_stays_out_of_reprs_and_errors() -> None:
    secret = new_webhook_secret()
    auth = SignalAuthenticator([secret])
    assert secret not in repr(auth)
    with pytest.raises(SignalAuthError) as caught:
        auth.verify(str(int(time.time())), "sha256=" + "ab" * 32, b"{}")
    assert secret not in str(caught.value)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SignalAuthenticator(["short"])


async def test_rotation_accepts_old_and_new_webhook_secret() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    verifier = SignalAuthenticator([new, old])
    body = signal_body()
    for sender in (SignalAuthenticator([old]), SignalAuthenticator([new])):
        timestamp, signature = sender.sign(body)
        verifier.verify(timestamp, signature, body)
        verifier.verify(timestamp, "sha256=" + signature.upper(), body)


async def test_the_documented_recipe() -> None:
    import hashlib
    import hmac

    secret = new_webhook_secret()
    body = signal_body()
    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    SignalAuthenticator([secret]).verify(timestamp, signature, body)
