"""The soak's own parts: the percentile its windows report, its plot, and how ids map back to legs."""

from __future__ import annotations

import xml.dom.minidom

from engine.trading.ids import ClientOrderIds
from soak.gauges import Sample, percentile
from soak.legs import ADVANCED_FUTURES, ADVANCED_SPOT, LEGS
from soak.plot import svg
from soak.run import _leg_of


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]  # 1..100
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.99) == 0.0


def test_the_plot_is_svg_with_one_line_for_rss_and_one_for_p99() -> None:
    samples = [
        Sample(at_s=t, orders=100 * t, rss=(100 + t) << 20, fds=30, throughput=50.0, p50_ms=1.0,
               p99_ms=float(t % 3), max_ms=4.0)
        for t in range(1, 11)
    ]  # fmt: skip
    picture = svg(samples, "soak <test>", warmup_s=3.0)
    document = xml.dom.minidom.parseString(picture)  # noqa: S318 (our own output)
    lines = document.getElementsByTagName("polyline")
    assert len(lines) == 2
    assert all(len(line.getAttribute("points").split()) == len(samples) for line in lines)
    assert "warm-up ends" in picture
    assert "too few samples" in svg(samples[:1], "short")


def test_every_id_an_engine_of_a_leg_makes_maps_back_to_that_leg() -> None:
    legs = list(LEGS.values())
    for leg in (ADVANCED_SPOT, ADVANCED_FUTURES):
        ids = ClientOrderIds(f"{leg.name}.3")
        assert _leg_of(ids.next(), legs) is leg
    assert _leg_of("someone-else", legs) is None
    assert _leg_of(ClientOrderIds("primer").next(), legs) is None
