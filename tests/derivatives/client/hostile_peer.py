"""A deliberately misbehaving gateway peer on loopback, for the client's bad-input tests.

The simulator is the gateway the other tests trade against; it has no reason to send frames that are not
JSON, replies to ids nobody asked for, or messages of many megabytes. This peer does exactly that, on cue:
it answers the session's handshake as the gateway does and hands every other request to the test's
`respond`, which may reply, misreply, stay silent or drop the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

Respond = Callable[[web.WebSocketResponse, dict[str, Any]], Awaitable[None]]


@dataclass
class HostilePeer:
    url: str
    respond: Respond
    expires_in: float = 900.0
    received: list[dict[str, Any]] = field(default_factory=list)  # every request, over every connection
    connections: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [request["method"] for request in self.received]

    async def reply(self, ws: web.WebSocketResponse, request: dict[str, Any], result: Any) -> None:
        await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))


HANDSHAKE = {"public/set_heartbeat": "ok", "private/enable_cancel_on_disconnect": "ok", "public/test": {}}


@asynccontextmanager
async def hostile_peer(respond: Respond, *, expires_in: float = 900.0) -> AsyncIterator[HostilePeer]:
    peer = HostilePeer("", respond, expires_in)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        peer.connections += 1
        peer.sockets.append(ws)
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                break
            frame = orjson.loads(message.data)
            peer.received.append(frame)
            method = frame.get("method")
            if method == "public/auth":
                result = {"access_token": "opaque", "expires_in": peer.expires_in, "scope": "rat#trade"}
                await peer.reply(ws, frame, result)
            elif method in HANDSHAKE:
                await peer.reply(ws, frame, HANDSHAKE[method])
            elif method == "private/subscribe":
                await peer.reply(ws, frame, frame["params"]["channels"])
            else:
                asyncio.get_running_loop().create_task(peer.respond(ws, frame))
        return ws

    app = web.Application()
    app.router.add_get("/ws/api/v2", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    peer.url = f"ws://127.0.0.1:{port}/ws/api/v2"
    try:
        yield peer
    finally:
        for ws in peer.sockets:
            await ws.close()
        await runner.cleanup()
