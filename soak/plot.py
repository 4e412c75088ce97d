"""The soak's plot: RSS and p99 ack latency over the run, as a hand-written SVG (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from soak.gauges import Sample

_W, _H = 760, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 70, 30, 40


def _polyline(xs: Sequence[float], ys: Sequence[float], y_max: float, colour: str) -> str:
    span_x = (xs[-1] - xs[0]) or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    points = " ".join(
        f"{_LEFT + (x - xs[0]) / span_x * plot_w:.1f},{_TOP + plot_h - (y / (y_max or 1.0)) * plot_h:.1f}"
        for x, y in zip(xs, ys, strict=True)
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'


def svg(samples: Sequence[Sample], title: str, warmup_s: float | None = None) -> str:
    """RSS (MiB, left axis, blue) and p99 ack latency (ms, right axis, red) against seconds into the run."""
    if len(samples) < 2:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="40"><text x="10" y="25">'
            f"{escape(title)}: too few samples to plot</text></svg>"
        )
    xs = [s.at_s for s in samples]
    rss = [s.rss / 2**20 for s in samples]
    p99 = [s.p99_ms for s in samples]
    rss_max, p99_max = max(rss) * 1.1, (max(p99) * 1.1) or 1.0
    plot_h = _H - _TOP - _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end" fill="#1f5fbf">{rss_max:.0f} MiB</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" text-anchor="end" fill="#1f5fbf">0</text>',
        f'<text x="{_W - _RIGHT + 6}" y="{_TOP + 4}" fill="#c0392b">{p99_max:.1f} ms</text>',
        f'<text x="{_W - _RIGHT + 6}" y="{_TOP + plot_h}" fill="#c0392b">0</text>',
        f'<text x="{_LEFT}" y="{_H - 12}">0 s</text>',
        f'<text x="{_W - _RIGHT}" y="{_H - 12}" text-anchor="end">{xs[-1]:.0f} s</text>',
        f'<text x="{_W / 2}" y="{_H - 12}" text-anchor="middle">'
        '<tspan fill="#1f5fbf">RSS</tspan> and <tspan fill="#c0392b">p99 ack latency</tspan> '
        "per sampling window</text>",
        _polyline(xs, rss, rss_max, "#1f5fbf"),
        _polyline(xs, p99, p99_max, "#c0392b"),
    ]
    if warmup_s is not None and xs[0] < warmup_s < xs[-1]:
        x = _LEFT + (warmup_s - xs[0]) / (xs[-1] - xs[0]) * (_W - _LEFT - _RIGHT)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" stroke="#777" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{x + 4:.1f}" y="{_TOP + 12}" fill="#777">warm-up ends</text>')
    parts.append("</svg>")
    return "\n".join(parts)
