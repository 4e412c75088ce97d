"""What engine.net.lane uses of aiohttp below the session, checked against the installed aiohttp.

The lane builds a `ClientRequest` only as a connection key, asks the connector for a connection, writes the
request onto the connection's transport and reads the response through the protocol. None of that is public
API, so an aiohttp release may change it; pyproject.toml pins aiohttp below the first minor version the lane
has not been tested with. These checks make such a change fail here, by name, instead of as a wrong request
or a hang on the order path. When one fails after an aiohttp upgrade: read the new code, adapt the lane, run
tests/client/test_lane.py (the bytes on the wire against `session.request`'s), then raise the pin.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import RequestInfo
from aiohttp.connector import BaseConnector, Connection
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawResponseMessage
from packaging.requirements import Requirement
from packaging.version import Version
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
VERSION = aiohttp.__version__


def _fail(internal: str, expected: str, found: object) -> None:
    pytest.fail(
        f"aiohttp {VERSION} changed {internal}, which engine/net/lane.py relies on: expected {expected}, "
        f"found {found}. Adapt the lane to it (and keep aiohttp pinned below this version until then).",
        pytrace=False,
    )


def _parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(function).parameters)


def _accepts(internal: str, function: Callable[..., Any], positional: list[str], keywords: list[str]) -> None:
    """`function` takes `positional` in that order and `keywords` by name, and nothing else is required."""
    parameters = _parameters(function)
    found = inspect.signature(function)
    leading = [
        name
        for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"
    ]
    if leading[: len(positional)] != positional:
        _fail(internal, f"positional parameters ({', '.join(positional)})", found)
    for name in keywords:
        p = parameters.get(name)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            _fail(internal, f"a keyword parameter {name!r}", found)
    given = {"self", *positional, *keywords}
    required = [
        name
        for name, p in parameters.items()
        if name not in given and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        _fail(internal, f"no required parameter beyond ({', '.join(sorted(given - {'self'}))})", found)


def test_client_request_is_built_from_method_url_loop_session_ssl() -> None:
    # RequestLane.__init__: aiohttp.ClientRequest("GET", origin, loop=loop, session=session, ssl=True)
    _accepts(
        "ClientRequest.__init__",
        aiohttp.ClientRequest.__init__,
        ["method", "url"],
        ["loop", "session", "ssl"],
    )


def test_connector_connect_takes_request_traces_timeout() -> None:
    # RequestLane._connection: connector.connect(template, [], ClientTimeout(connect=...))
    _accepts("BaseConnector.connect", BaseConnector.connect, ["req", "traces", "timeout"], [])
    if not inspect.iscoroutinefunction(BaseConnector.connect):
        _fail("BaseConnector.connect", "a coroutine function", BaseConnector.connect)
    if not hasattr(aiohttp.ClientTimeout(connect=1.0), "connect"):
        _fail("ClientTimeout", "a 'connect' field", aiohttp.ClientTimeout)


def test_connection_hands_out_its_protocol_and_goes_back_to_the_pool() -> None:
    # RequestLane._exchange: connection.protocol, connection.release(), connection.close()
    if not isinstance(inspect.getattr_static(Connection, "protocol", None), property):
        _fail("Connection.protocol", "a property", inspect.getattr_static(Connection, "protocol", None))
    for method in ("release", "close"):
        function = getattr(Connection, method, None)
        if function is None or inspect.iscoroutinefunction(function) or _required(function):
            _fail(f"Connection.{method}", "a plain method without arguments", function)


def _required(function: Callable[..., Any]) -> list[str]:
    return [
        name
        for name, p in _parameters(function).items()
        if name != "self" and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def test_response_protocol_parses_on_request_and_reads_message_and_payload() -> None:
    # RequestLane._exchange: protocol.transport, protocol.set_response_params(auto_decompress=True),
    # `message, payload = await protocol.read()`, message.code / message.headers, `await payload.read()`
    if inspect.getattr_static(ResponseHandler, "transport", None) is None:
        _fail("ResponseHandler.transport", "an attribute", None)
    _accepts(
        "ResponseHandler.set_response_params", ResponseHandler.set_response_params, [], ["auto_decompress"]
    )
    read = getattr(ResponseHandler, "read", None)
    if read is None or not inspect.iscoroutinefunction(read) or _required(read):
        _fail("ResponseHandler.read", "a coroutine function without arguments", read)
    for field in ("code", "headers"):
        if not hasattr(RawResponseMessage, field):
            _fail(f"RawResponseMessage.{field}", "a field", RawResponseMessage)
    if not inspect.iscoroutinefunction(aiohttp.StreamReader.read):
        _fail("StreamReader.read", "a coroutine function", aiohttp.StreamReader.read)


def test_errors_the_lane_raises_and_translates() -> None:
    # a parse error becomes ClientResponseError(RequestInfo(url, method, headers, url), (), status=...)
    for name in (
        "ClientConnectionResetError",
        "ConnectionTimeoutError",
        "ClientOSError",
        "ServerDisconnectedError",
    ):
        if not isinstance(getattr(aiohttp, name, None), type):
            _fail(f"aiohttp.{name}", "an exception class", getattr(aiohttp, name, None))
    error = HttpProcessingError(code=400, message="bad", headers=None)
    if (error.code, error.message, error.headers) != (400, "bad", None):
        _fail("HttpProcessingError", "code, message and headers attributes", vars(error))
    fields = getattr(RequestInfo, "_fields", None)
    if fields is None or tuple(fields[:4]) != ("url", "method", "headers", "real_url"):
        _fail("RequestInfo", "fields (url, method, headers, real_url)", fields)
    _accepts(
        "ClientResponseError.__init__",
        aiohttp.ClientResponseError.__init__,
        ["request_info", "history"],
        ["status", "message", "headers"],
    )
    if not isinstance(URL("https://127.0.0.1:8443/").host_port_subcomponent, str):
        _fail("yarl.URL.host_port_subcomponent", "a str (yarl >= 1.17)", None)


def test_the_pin_covers_the_aiohttp_under_test() -> None:
    """The installed aiohttp is inside pyproject.toml's range: a newer one is tested before the pin moves."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [Requirement(d) for d in dependencies if Requirement(d).name == "aiohttp"]
    assert any(s.operator == "<" for s in spec.specifier), f"aiohttp has no upper bound in pyproject: {spec}"
    assert Version(VERSION) in spec.specifier, (
        f"aiohttp {VERSION} is outside pyproject.toml's {spec}: the lane was not tested with it"
    )
