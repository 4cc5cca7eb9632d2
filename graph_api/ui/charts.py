"""Charts drawn on the server as SVG: no chart library, no script, nothing fetched by the browser.

Text goes through markupsafe.escape (a value from a source system may hold `<`)."""

from __future__ import annotations

from markupsafe import Markup, escape

GREEN, RED, GREY, BLUE = "#2e8540", "#c0392b", "#7f8a99", "#1f5fa8"


def _number(x: float) -> str:
    return f"{x:+.2f}" if x else "0"


def waterfall(steps: list[tuple[str, float]], total: float | None, prior: float | None) -> Markup:
    """Splink's match-weight waterfall: from the prior, each comparison moves the weight up (green) or
    down (red); the last bar is the final match weight. `steps`: (comparison, weight)."""
    bars: list[tuple[str, float, float, str]] = []  # label, from, to, colour
    running = prior or 0.0
    if prior is not None:
        bars.append(("先验 prior", 0.0, prior, GREY))
    for label, weight in steps:
        bars.append((label, running, running + weight, GREEN if weight >= 0 else RED))
        running += weight
    if total is not None:
        bars.append(("总计 match weight", 0.0, total, BLUE))
    if not bars:
        return Markup('<p class="none">无比较权重 <small>No comparison weights</small></p>')
    ends = [v for _, a, b, _ in bars for v in (a, b)] + [0.0]
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0
    label_w, plot_w, row_h, top = 150, 420, 22, 8
    width, height = label_w + plot_w + 60, top + row_h * len(bars) + 24
    x = lambda v: label_w + (v - low) / span * plot_w  # noqa: E731
    parts = [f'<svg class="waterfall" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="match weight waterfall">',
             f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 18}" stroke="#999" '
             'stroke-dasharray="3,3"/>']
    for i, (label, start, end, colour) in enumerate(bars):
        y = top + i * row_h
        left, right = sorted((x(start), x(end)))
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>')
        parts.append(f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1.5):.1f}" height="{row_h - 6}" '
                     f'fill="{colour}"><title>{escape(label)}: {_number(end - start)}</title></rect>')
        parts.append(f'<text x="{right + 4:.1f}" y="{y + 15}" font-size="11" fill="#333">'
                     f'{_number(end - start) if colour not in (BLUE, GREY) else f"{end:.2f}"}</text>')
        if i + 1 < len(bars) and colour not in (BLUE,):  # the connector to the next bar's start
            parts.append(f'<line x1="{x(end):.1f}" y1="{y + row_h - 3}" x2="{x(end):.1f}" y2="{y + row_h + 3}" '
                         'stroke="#555"/>')
    parts.append(f'<text x="{x(0):.1f}" y="{height - 4}" text-anchor="middle" font-size="11" fill="#555">0</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(rows: list[tuple[str, float]], unit: str = "", colour: str = BLUE, width: int = 520) -> Markup:
    """A horizontal bar chart of (label, value)."""
    if not rows:
        return Markup('<p class="none">无数据 <small>No data</small></p>')
    label_w, row_h = 130, 20
    plot_w = width - label_w - 70
    peak = max((v for _, v in rows), default=0) or 1
    height = row_h * len(rows) + 6
    parts = [f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value) in enumerate(rows):
        y = 3 + i * row_h
        w = max(value / peak * plot_w, 0)
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">'
                     f'{escape(_plain(value))}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: list[tuple[str, float]], width: int = 520, height: int = 140, colour: str = BLUE) -> Markup:
    """A line over ordered points (label, value): a trend across runs or years."""
    if not points:
        return Markup('<p class="none">无数据 <small>No data</small></p>')
    left, right, top, bottom = 40, 10, 10, 24
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span = (hi - lo) or 1.0
    step = (width - left - right) / max(len(points) - 1, 1)
    xy = [(left + i * step, top + (hi - v) / span * (height - top - bottom)) for i, (_, v) in enumerate(points)]
    parts = [f'<svg class="line" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
             + " ".join(f"{a:.1f},{b:.1f}" for a, b in xy) + '"/>',
             f'<text x="4" y="{top + 8}" font-size="10">{escape(_plain(hi))}</text>',
             f'<text x="4" y="{height - bottom}" font-size="10">{escape(_plain(lo))}</text>']
    for (a, b), (label, value) in zip(xy, points, strict=True):
        parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"><title>{escape(label)}: '
                     f'{escape(_plain(value))}</title></circle>')
    stride = max(1, len(points) // 8)
    for i in range(0, len(points), stride):
        parts.append(f'<text x="{xy[i][0]:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
                     f'{escape(points[i][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _plain(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
