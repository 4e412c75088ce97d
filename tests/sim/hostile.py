"""The machinery of the hostile-input tables (`test_hostile.py`): rows, how each is sent, and what counts as
an answer.

Every REST row is sent as raw bytes on its own connection (`Connection: close`), so a row can carry what no
HTTP client library would send: latin-1 bytes in a header, a path that is not UTF-8, a body that is not JSON.
A row is signed at send time, with a JWT (Advanced Trade) or an HMAC signature (Exchange), unless it says
otherwise; a row that attacks authentication overrides the claims, the timestamp or the headers after
signing. An answer is judged by the row's `expect`; no answer within `HANG_S` is a hung connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import orjson
from cryptography.hazmat.primitives import serialization

from tests.support.keys import TestExchangeKey, TestKey

_NOW_TEMPLATE = re.compile(r"\{now([+-][0-9]+)?\}")

HANG_S = (
    5.0  # a connection with no answer and not closed after this long is hung (the simulator bounds at 0.5 s)
)

Expect = Callable[[int, bytes], bool]
DROP = object()  # a claim value meaning: leave this claim out


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def refused(status: int, body: bytes) -> bool:
    """A 4xx, or Coinbase's 200 that refuses: success false, or preview/edit errors."""
    if 400 <= status < 500:
        return True
    if status != 200:
        return False
    answer = _json(body)
    if not isinstance(answer, dict):
        return False
    return answer.get("success") is False or bool(answer.get("errs")) or bool(answer.get("errors"))


def answered(status: int, body: bytes) -> bool:
    """Any answer but a server error: for rows whose values are odd but harmless (an unknown currency)."""
    return 0 < status < 500


def unauthorized(status: int, body: bytes) -> bool:
    return status == 401


def bad_request(status: int, body: bytes) -> bool:
    return status == 400


def ok(status: int, body: bytes) -> bool:
    return status == 200


@dataclass(frozen=True)
class Row:
    """One hostile REST request. `body` is bytes as sent, or a value written with the standard `json` module
    (which spells NaN and integers of any size, as a hostile client would). `auth` is "jwt", "hmac" or None.
    """

    name: str
    method: str
    path: str
    body: Any = None
    auth: str | None = None
    expect: Expect = refused
    headers: tuple[
        tuple[bytes, bytes], ...
    ] = ()  # added (or, by name, replacing the signed ones) after signing
    claims: dict[str, Any] = field(default_factory=dict)  # JWT claim overrides (DROP removes one)
    # the HMAC timestamp text, signed as given; "{now}" is the time of sending, "{now-45}" 45 s before it
    timestamp: str | None = None

    def body_bytes(self, context: dict[str, str]) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).replace("{order_id}", context.get("order_id", "")).encode()


def jwt_for(key: TestKey, uri: str, claims: dict[str, Any]) -> str:
    """A CDP JWT as coinbase-advanced-py builds it, with `claims` overriding (or dropping) its claims."""
    private = serialization.load_pem_private_key(key.forms["pkcs8_pem"].encode(), password=None)
    now = int(time.time())
    payload: dict[str, Any] = {"sub": key.name, "iss": "cdp", "nbf": now, "exp": now + 120, "uri": uri}
    for name, value in claims.items():
        if value is DROP:
            payload.pop(name, None)
        else:  # a callable is given the time now, for a claim relative to it
            payload[name] = value(time.time()) if callable(value) else value
    headers = {"kid": key.name, "nonce": secrets.token_hex()}
    return jwt.encode(payload, private, algorithm=key.algorithm, headers=headers)  # type: ignore[arg-type]


def hmac_headers(
    key: TestExchangeKey, timestamp: str, method: str, path: bytes, body: bytes
) -> list[tuple[bytes, bytes]]:
    message = timestamp.encode("utf-8", "surrogateescape") + method.encode() + path + body
    signature = base64.b64encode(hmac.new(base64.b64decode(key.secret), message, hashlib.sha256).digest())
    return [
        (b"CB-ACCESS-KEY", key.key.encode()),
        (b"CB-ACCESS-SIGN", signature),
        (b"CB-ACCESS-TIMESTAMP", timestamp.encode("utf-8", "surrogateescape")),
        (b"CB-ACCESS-PASSPHRASE", key.passphrase.encode()),
    ]


@dataclass
class Target:
    """The served simulator a table is sent to, and the credentials rows are signed with."""

    host: str
    port: int
    cdp_key: TestKey = field(repr=False)
    exchange_key: TestExchangeKey = field(repr=False)
    context: dict[str, str] = field(default_factory=dict)  # values rows refer to, such as "{order_id}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, row: Row) -> bytes:
        path = row.path.replace("{order_id}", self.context.get("order_id", "")).encode(
            "utf-8", "surrogateescape"
        )
        body = row.body_bytes(self.context)
        headers: list[tuple[bytes, bytes]] = [(b"Host", self.authority.encode())]
        if row.auth == "jwt":
            uri = f"{row.method} {self.authority}{path.decode('latin-1').split('?')[0]}"
            headers.append((b"Authorization", b"Bearer " + jwt_for(self.cdp_key, uri, row.claims).encode()))
        elif row.auth == "hmac":
            timestamp = _NOW_TEMPLATE.sub(
                lambda m: f"{time.time() + int(m.group(1) or 0):.3f}",
                "{now}" if row.timestamp is None else row.timestamp,
            )
            headers += hmac_headers(self.exchange_key, timestamp, row.method, path, body)
        replaced = {name.lower() for name, _ in row.headers}
        headers = [(n, v) for n, v in headers if n.lower() not in replaced] + list(row.headers)
        if body:
            headers.append((b"Content-Type", b"application/json"))
        headers += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
        head = row.method.encode() + b" " + path + b" HTTP/1.1\r\n"
        head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        return head + b"\r\n" + body

    async def send_raw(self, data: bytes) -> tuple[int, bytes] | None:
        """(status, body) of the answer, (0, b"") if the server closed without one, None if it hung.

        A server that refuses a request before reading all of it closes with bytes unread, which resets the
        connection; what arrived before the reset is the answer.
        """
        reader, writer = await asyncio.open_connection(self.host, self.port)
        received = b""
        try:
            writer.write(data)
            async with asyncio.timeout(HANG_S):
                while b"\r\n\r\n" not in received and (chunk := await reader.read(65536)):
                    received += chunk
                length = _content_length(received.partition(b"\r\n\r\n")[0])
                while len(received.partition(b"\r\n\r\n")[2]) < length and (
                    chunk := await reader.read(65536)
                ):
                    received += chunk
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        finally:
            writer.close()
        if not received:
            return 0, b""
        head, _, body = received.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split(b" ")
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else -1
        return status, body

    async def judge(self, rows: list[Row]) -> list[str]:
        """Send every row; return one line per row that was hung, a 5xx, or not what it expected."""
        failures = []
        for row in rows:
            answer = await self.send_raw(self.request(row))
            if answer is None:
                failures.append(f"{row.name}: hung (no answer, not closed, after {HANG_S} s)")
            elif answer[0] >= 500 or answer[0] <= 0 or not row.expect(*answer):
                failures.append(f"{row.name}: {answer[0]} {answer[1][:200]!r}")
        return failures


Frame = str | bytes  # a text frame, or a binary one
Reply = dict[str, Any]


@dataclass(frozen=True)
class WsSurface:
    """A WebSocket surface: where it is, its hostile frames (built at run time, as a row may need a token),
    and a probe it must still answer after each of them on the same connection, with what an error reply
    and the probe's answer look like. A frame must get an error reply (a binary frame may go unanswered),
    or aiohttp's protocol-level close."""

    path: str
    rows: Callable[[Target], list[tuple[str, Frame]]]
    probe: str
    is_probe_answer: Callable[[Reply], bool]
    is_error: Callable[[Reply], bool]

    async def judge(self, target: Target) -> list[str]:
        failures = []
        async with aiohttp.ClientSession() as http:
            for name, frame in self.rows(target):
                async with http.ws_connect(f"http://{target.authority}{self.path}") as ws:
                    await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                    await ws.send_str(self.probe)
                    replies: list[Reply] = []
                    try:
                        async with asyncio.timeout(HANG_S):
                            while not any(self.is_probe_answer(r) for r in replies):
                                message = await ws.receive()
                                if message.type != aiohttp.WSMsgType.TEXT:
                                    replies.append({"closed": message.type.name})
                                    break
                                reply = orjson.loads(message.data)
                                replies.append(reply if isinstance(reply, dict) else {"reply": reply})
                    except TimeoutError:
                        failures.append(f"{name}: hung after {replies!r:.200}")
                        continue
                    errors = [r for r in replies if self.is_error(r)]
                    if not any(self.is_probe_answer(r) for r in replies) or (
                        not errors and not isinstance(frame, bytes)
                    ):
                        failures.append(f"{name}: {replies!r:.300}")
        return failures


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0
