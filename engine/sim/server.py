"""The simulator's HTTP/1.1 server: its own lane for the routed REST and admin requests, aiohttp for the rest.

aiohttp's web application costs more CPU per request than the simulated exchange behind it (request and
response objects, middleware, a task per request, header and URL objects nobody reads): enough to make the
simulator, not the client, the bottleneck of an order benchmark. So a connection starts on a lean lane: an
`asyncio.Protocol` that splits the request head itself, looks the route up in a dict, runs the handler inline
(a task is made only if the handler suspends, as a fault's injected latency does) and writes the response
head and body in one write.

The lane serves only what it fully understands: `HTTP/1.1`, a method and path on its route table, an ASCII
head of well-formed header lines, a `Host`, a body framed by one `Content-Length` of at most 1 MiB, no
`Transfer-Encoding`, `Upgrade` or `Expect`, no percent-escapes in the path. Anything else (a WebSocket
upgrade, a chunked body, an unknown route, a malformed request) hands the connection, with every byte not
yet served, to aiohttp's request handler for the same application, which answers it exactly as before
(404, 405, 400, 413, the WebSocket) and keeps the connection from then on. Responses carry the headers
aiohttp would send, in its order: Content-Type, the handler's own, Content-Length, Date, Server.

A head is handed over as soon as a byte shows it can never be one the lane serves (binary, a bare LF), so
aiohttp refuses it then rather than both waiting for a CR LF CR LF that will not come; and a request still
arriving `request_timeout_s` after its first byte (a slowloris) is answered 408 and its connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Coroutine
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpProcessingError
from multidict import CIMultiDict

from engine._eager import resume
from engine.sim.messages import Handler, SimRequest, SimResponse

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # aiohttp's client_max_size for the application: larger bodies go to aiohttp (413)
_MAX_HEAD = 1 << 16  # a head not complete within this many bytes goes to aiohttp (which refuses it)
# aiohttp's max_field_size/max_line_size and max_headers: a head beyond them goes to aiohttp, which refuses it
_MAX_LINE = 8190
_MAX_HEADERS = 128
_MAX_BUFFERED = 4 << 20  # pipelined bytes held while a handler is suspended before reading pauses

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTROLS = bytes([*range(0x20), 0x7F])
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
# header names the lane acts on; any of the last four sends the connection to aiohttp
_CONTENT_LENGTH, _CONNECTION, _HOST = "content-length", "connection", "host"
_TO_AIOHTTP = frozenset({"transfer-encoding", "upgrade", "expect", "http2-settings"})
_ERROR_500 = (
    f"{HTTPStatus.INTERNAL_SERVER_ERROR.value} {HTTPStatus.INTERNAL_SERVER_ERROR.phrase}\n\n"
    f"{HTTPStatus.INTERNAL_SERVER_ERROR.description}"
).encode()


# ---- routes ------------------------------------------------------------------------------------------------
class _Resource:
    """One path (static, or with `{name}` parts) and its handler per method."""

    __slots__ = ("handlers", "match", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.handlers: dict[str, Handler] = {}
        self.match: Callable[[str], re.Match[str] | None] | None = None
        if "{" in path:
            pattern = "".join(
                f"(?P<{part[1:-1]}>[^{{}}/]+)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path)
                if part
            )
            self.match = re.compile(pattern).fullmatch


def _index_key(path: str) -> str:
    """aiohttp's resource index key: a dynamic path is filed under its static prefix up to the last slash."""
    if "{" in path:
        path = path.partition("{")[0].rpartition("/")[0]
    return path.rstrip("/") or "/"


class Router:
    """Routes by method and path, resolved as aiohttp's `UrlDispatcher` resolves them.

    aiohttp files each resource under its static prefix and walks a request's path from the whole path up
    to "/", trying each prefix's resources in the order they were added: an exact static path always wins,
    then the dynamic resource with the longest static prefix. `resolve` does the same walk; a path or method
    with no route returns None (the connection then goes to aiohttp, which answers 404 or 405).
    """

    def __init__(self) -> None:
        self._index: dict[str, list[_Resource]] = {}
        self._static: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        resources = self._index.setdefault(_index_key(path), [])
        resource = next((r for r in resources if r.path == path), None)
        if resource is None:
            resource = _Resource(path)
            resources.append(resource)
        resource.handlers[method] = handler
        self._rebuild_static()

    def _rebuild_static(self) -> None:
        """Exact (method, path) pairs whose walk ends at their own static resource: one dict lookup each."""
        self._static = {}
        for resources in self._index.values():
            for resource in resources:
                if resource.match is None:
                    for method, handler in resource.handlers.items():
                        self._static[(method, resource.path)] = handler

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        handler = self._static.get((method, path))
        if handler is not None:
            return handler, {}
        part = path
        while part:
            for resource in self._index.get(part, ()):
                if resource.match is None:
                    if resource.path != path:
                        continue
                    params: dict[str, str] = {}
                else:
                    found = resource.match(path)
                    if found is None:
                        continue
                    params = found.groupdict()
                handler = resource.handlers.get(method)
                if handler is not None:
                    return handler, params
            if part == "/":
                break
            part = part.rpartition("/")[0] or "/"
        return None


# ---- responses ---------------------------------------------------------------------------------------------
class _HttpDate:
    """The Date header, formatted once a second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._text = second, formatdate(second, usegmt=True)
        return self._text


_http_date = _HttpDate()


_CLOSE = "Connection: close\r\n"


def render(response: SimResponse, close: bool) -> bytes:
    """Status line, headers and body as aiohttp writes them for a `web.Response` with a bytes body."""
    headers = response.headers
    extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()]) if headers else ""
    status = response.status
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {response.content_type}\r\n{extra}"
        f"Content-Length: {len(response.body)}\r\nDate: {_http_date()}\r\nServer: {SERVER_SOFTWARE}\r\n"
        f"{_CLOSE if close else ''}\r\n"
    )
    return head.encode() + response.body


def _internal_error() -> SimResponse:
    return SimResponse(_ERROR_500, 500, "text/plain; charset=utf-8")  # as aiohttp answers an error


def _request_timeout() -> SimResponse:
    return SimResponse(b"408: Request Timeout", 408, "text/plain; charset=utf-8")


class _MalformedRequests(logging.Filter):
    """aiohttp logs each request it cannot parse as an ERROR with a traceback: the client's mistake, not the
    simulator's, and a way for anyone who can connect to fill the log. Such a record becomes one INFO line
    naming the peer and the kind of mistake (not its text, which quotes the client's bytes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "%s: %s", (record.getMessage(), type(exc).__name__)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


AIOHTTP_LOG = logging.getLogger("engine.sim.aiohttp")  # the logger the simulator gives aiohttp's handler
AIOHTTP_LOG.addFilter(_MalformedRequests())


class RefusingRequestHandler(web.RequestHandler):
    """aiohttp's request handler, except that a request it cannot parse is refused without quoting it.

    aiohttp's own refusal puts the parser's message in the body, and that message quotes the offending bytes:
    for an over-long header line, its first hundred bytes, which for `Authorization` or `CB-ACCESS-SIGN` are
    the credential. The refusal here keeps aiohttp's status and names only the kind of mistake.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != HTTPStatus.INTERNAL_SERVER_ERROR:  # aiohttp's 500 body is fixed text already
            kind = f" ({type(exc).__name__})" if isinstance(exc, HttpProcessingError) else ""
            message = f"{status}: {_REASONS.get(status, 'Error')}{kind}"
        return super().handle_error(request, status, exc, message)


def refusing_handlers(server: web.Server, *, keepalive_timeout_s: float) -> Callable[[], web.RequestHandler]:
    """A factory of `RefusingRequestHandler`s for `server`, built as `web.Server` builds its own handlers."""
    loop = asyncio.get_running_loop()

    def handler() -> web.RequestHandler:
        # access_log=None (no access log) is what web.AppRunner passes too, though the annotation says Logger
        return RefusingRequestHandler(
            server,
            loop=loop,
            keepalive_timeout=keepalive_timeout_s,
            logger=AIOHTTP_LOG,
            access_log=None,  # type: ignore[arg-type]
        )

    return handler


# ---- the lane ----------------------------------------------------------------------------------------------
class _Head:
    """A request head the lane can serve: request line parts, headers, framing."""

    __slots__ = ("close", "headers", "host", "length", "method", "target")

    def __init__(
        self, method: str, target: str, headers: CIMultiDict[str], host: str, length: int, close: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.host = host
        self.length = length
        self.close = close


class _HeaderNames:
    """Header names already checked to be tokens, with their lower-case form: clients send the same few."""

    __slots__ = ("known",)

    def __init__(self) -> None:
        self.known: dict[str, str] = {}  # checked names, as sent -> lower-cased: a dict lookup per line

    def lower(self, name: str) -> str | None:
        """`name` lower-cased, or None if it is not a valid header name."""
        lower = self.known.get(name)
        if lower is None:
            if not _TOKEN(name):
                return None
            lower = name.lower()
            if len(self.known) < 1024:
                self.known[name] = lower
        return lower


_header_names = _HeaderNames()
_ACTED_ON = frozenset({_CONTENT_LENGTH, _CONNECTION, _HOST, *_TO_AIOHTTP})


def may_become_head(partial: bytes) -> bool:
    """Whether the start of a head, not yet complete, could still become one the lane serves.

    A non-ASCII byte, a control character or a bare CR or LF means it cannot: the connection goes to aiohttp
    at once, which refuses it as soon as it sees the byte, rather than waiting for a blank line that a head
    ending its lines in bare LFs, or binary, never sends.
    """
    if not partial.isascii():
        return False
    if partial.endswith(b"\r"):  # the CR of a CR LF split between two reads
        partial = partial[:-1]
    return len(partial) - len(partial.translate(None, _CONTROLS)) == 2 * partial.count(b"\r\n")


def parse_head(head: bytes) -> _Head | None:
    """The request head (without its blank line), or None if the lane should not serve it."""
    if not head.isascii():
        return None
    lines = head.decode("ascii").split("\r\n")
    if len(head) - len(head.translate(None, _CONTROLS)) != 2 * (len(lines) - 1):
        return None  # a control character other than the CR LF ending each line (a tab, a bare LF)
    if len(lines) > _MAX_HEADERS + 1 or (len(head) > _MAX_LINE and max(map(len, lines)) > _MAX_LINE):
        return None
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or request_line[2] != "HTTP/1.1":
        return None
    method, target = request_line[0], request_line[1]
    if not target.startswith("/") or "#" in target:
        return None
    pairs = []
    host: str | None = None
    length = -1
    close = False
    known, lower_name = _header_names.known, _header_names.lower
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        lower = known.get(name) or lower_name(name)
        if lower is None:
            return None
        value = value.strip(" ")
        if lower in _ACTED_ON:
            if lower == _CONTENT_LENGTH:
                if length >= 0 or not value.isdigit():
                    return None
                length = int(value)
            elif lower == _HOST:
                if host is None:
                    host = value
            elif lower == _CONNECTION:
                tokens = {token.strip().lower() for token in value.split(",")}
                if "upgrade" in tokens:
                    return None
                close = close or "close" in tokens
            else:
                return None
        pairs.append((name, value))
    if host is None or length > MAX_BODY:
        return None
    return _Head(method, target, CIMultiDict(pairs), host, max(length, 0), close)


class HttpLane:
    """What every connection of one server shares: routes, aiohttp's handler factory, open connections."""

    def __init__(self, router: Router, aiohttp_handler: Callable[[], web.RequestHandler]) -> None:
        self.router = router
        self.aiohttp_handler = aiohttp_handler
        self.connections: set[LaneConnection] = set()

    def __call__(self) -> LaneConnection:
        return LaneConnection(self)

    def close_idle(self, idle_s: float) -> None:
        """Close keep-alive connections idle for longer than `idle_s`, as aiohttp's keep-alive timer does."""
        cutoff = time.monotonic() - idle_s
        for connection in list(self.connections):
            if connection.idle_since(cutoff):
                connection.close()

    def close_stalled(self, timeout_s: float) -> None:
        """Answer 408 and close every connection whose request has been arriving for longer than
        `timeout_s`: a head or body that never ends (a slowloris) must not hold a connection for ever."""
        cutoff = time.monotonic() - timeout_s
        for connection in list(self.connections):
            if connection.stalled_since(cutoff):
                connection.time_out()

    async def shutdown(self) -> None:
        """Close every connection still on the lane; a handler still running is cancelled."""
        tasks = []
        for connection in list(self.connections):
            task = connection.close()
            if task is not None:
                tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class LaneConnection(asyncio.Protocol):
    """One client connection served by the lane until (and unless) it is handed to aiohttp."""

    def __init__(self, lane: HttpLane) -> None:
        self._lane = lane
        self._transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None  # a handler that suspended, carried on by a task
        self._write_paused = False
        self._read_paused = False
        self._last_active = time.monotonic()
        self._incomplete_since: float | None = None  # when the request that has arrived in part began

    # ---- asyncio.Protocol --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though uvloop's TLS transport does not subclass asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, list | tuple) else peer
        self._lane.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lane.connections.discard(self)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if self._task is None and not self._write_paused:
            self._serve()
        elif len(self._buffer) > _MAX_BUFFERED and not self._read_paused and self._transport is not None:
            self._transport.pause_reading()
            self._read_paused = True

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._task is None and self._buffer:
            self._serve()

    # ---- housekeeping ------------------------------------------------------------------------------------
    def idle_since(self, cutoff: float) -> bool:
        return self._task is None and not self._buffer and self._last_active < cutoff

    def stalled_since(self, cutoff: float) -> bool:
        since = self._incomplete_since
        return self._task is None and since is not None and since < cutoff

    def time_out(self) -> None:
        transport = self._transport
        self._buffer = b""
        self._incomplete_since = None
        if transport is not None and not transport.is_closing():
            transport.write(render(_request_timeout(), True))
            transport.close()

    def close(self) -> asyncio.Task[None] | None:
        task = self._task
        if task is not None:
            task.cancel()
        if self._transport is not None:
            self._transport.close()
        return task

    # ---- serving -----------------------------------------------------------------------------------------
    def _serve(self) -> None:
        """Serve every complete request in the buffer, in order, until one suspends or more bytes are due."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._read_paused:
            transport.resume_reading()
            self._read_paused = False
        buffer = self._buffer
        router = self._lane.router
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD or not may_become_head(buffer):
                    self._hand_off(buffer)
                    return
                if self._incomplete_since is None:
                    self._incomplete_since = time.monotonic()
                break
            if end > _MAX_HEAD:
                self._hand_off(buffer)
                return
            head = parse_head(buffer[:end])
            if head is None:
                self._hand_off(buffer)
                return
            target = head.target
            path, _, raw_query = target.partition("?")
            route = None if "%" in path else router.resolve(head.method, path)
            if route is None:
                self._hand_off(buffer)
                return
            start = end + 4
            stop = start + head.length
            if len(buffer) < stop:
                if self._incomplete_since is None:
                    self._incomplete_since = time.monotonic()
                break
            self._incomplete_since = None
            body = buffer[start:stop]
            buffer = self._buffer = buffer[stop:]
            handler, params = route
            request = SimRequest(
                head.method,
                target,
                path,
                raw_query,
                head.headers,
                head.host,
                self._remote,
                params,
                body,
                transport,
            )
            coro = handler(request)
            try:
                waiting_on = coro.send(None)
            except StopIteration as done:
                response: SimResponse = done.value
            except asyncio.CancelledError:  # the handler dropped the connection (the drop_after_accept fault)
                transport.abort()
                return
            except Exception:
                log.exception("Error handling request from %s", self._remote)
                transport.write(render(_internal_error(), True))
                transport.close()
                return
            else:
                carry_on = self._carry_on(coro, waiting_on, head.close)
                self._task = asyncio.get_running_loop().create_task(carry_on)
                return
            transport.write(render(response, head.close))
            self._last_active = time.monotonic()
            if head.close:
                transport.close()
                return
            if self._write_paused:
                break
        self._buffer = buffer

    async def _carry_on(self, coro: Coroutine[Any, Any, SimResponse], waiting_on: Any, close: bool) -> None:
        transport = self._transport
        assert transport is not None
        try:
            response = await resume(coro, waiting_on)
        except asyncio.CancelledError:
            transport.abort()
            return
        except Exception:
            log.exception("Error handling request from %s", self._remote)
            response, close = _internal_error(), True
        finally:
            self._task = None
        if transport.is_closing():
            return
        transport.write(render(response, close))
        self._last_active = time.monotonic()
        if close:
            transport.close()
        elif self._buffer and not self._write_paused:
            self._serve()

    def _hand_off(self, buffered: bytes) -> None:
        """From now on aiohttp serves this connection, from the request at the head of `buffered` on."""
        transport = self._transport
        assert transport is not None
        self._buffer = b""
        self._lane.connections.discard(self)
        protocol = self._lane.aiohttp_handler()
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        if self._read_paused:
            transport.resume_reading()
            self._read_paused = False
        if self._write_paused:
            protocol.pause_writing()
        protocol.data_received(buffered)
