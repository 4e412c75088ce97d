"""What the fuzz targets (fuzz/) found, each kept fixed by a test of its own."""

from __future__ import annotations

import msgspec
import pytest

from engine.venues.derivatives.codec import decode_frame


@pytest.mark.parametrize("frame", ["\udcff", '{"id": 1, "result": "\udcff"}', '{"method": "\ud800x"}'])
def test_a_frame_of_text_with_a_lone_surrogate_is_a_decode_error(frame: str) -> None:
    """msgspec raised UnicodeEncodeError for it, which no caller of `decode_frame` expects; and the first fix
    chained that error, which holds the whole frame, to the DecodeError (found by the fuzzer too)."""
    with pytest.raises(msgspec.DecodeError, match="not UTF-8 text") as raised:
        decode_frame(frame)
    assert raised.value.__context__ is None
    assert raised.value.__cause__ is None
