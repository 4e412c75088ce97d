"""Ids in request paths: `GET /orders/historical/{order_id}` and the like.

An id is spliced into the path the client signs and sends, so text that is not an id would change the
request: `?` starts a query, `#` a fragment, `/` and `..` walk to another resource, `%` escapes anything.
Every id and product id that goes into a path passes `path_segment`, which takes only the characters ids
are made of (RFC 3986's unreserved set, plus `:` for the Exchange's `client:<client_oid>` form) and refuses
anything else with `InvalidValue` naming the parameter. Refusing, not escaping: no Coinbase id needs an
escape, and an escaped id would still name a resource the caller did not mean.
"""

from __future__ import annotations

import re

from engine.errors import InvalidValue

__all__ = ["MAX_SEGMENT_LENGTH", "path_segment"]

MAX_SEGMENT_LENGTH = 128
_SEGMENT = re.compile(r"[A-Za-z0-9._~:-]+", re.ASCII)


def path_segment(value: object, name: str) -> str:
    """`value` as one path segment, unchanged; `InvalidValue(name, ...)` unless it is a plain id."""
    if not isinstance(value, str):
        raise InvalidValue(name, f"must be a string id, not {type(value).__name__}")
    if not value or len(value) > MAX_SEGMENT_LENGTH:
        raise InvalidValue(name, f"must be 1-{MAX_SEGMENT_LENGTH} characters")
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise InvalidValue(name, "must be an id: letters, digits and . _ ~ : - only (no /, ?, #, %, spaces)")
    return value
