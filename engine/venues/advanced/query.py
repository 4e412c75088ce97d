"""Query strings as Advanced Trade reads them: repeated keys for lists, booleans as true/false."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

__all__ = ["listify", "query_string"]


def query_string(params: dict[str, Any]) -> str:
    """Query string with repeated keys for lists (`order_ids=a&order_ids=b`), Nones dropped."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            pairs.extend((name, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return urlencode(pairs)


def listify(value: str | Iterable[str] | None) -> list[str] | None:
    """One id or many, as the list the query string repeats."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)
