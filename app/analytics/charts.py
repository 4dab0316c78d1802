"""Geometry for the dashboard's server-rendered SVG charts (templates draw them).

Charts are plain SVG computed here so the pages need no JavaScript and every
chart comes with a one-sentence description for screen readers; the exact
numbers are always in the table next to the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 720
HEIGHT = 220
PAD_LEFT = 48
PAD_RIGHT = 12
PAD_TOP = 12
PAD_BOTTOM = 28


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the ends align inwards so labels stay inside


@dataclass(frozen=True)
class LineChart:
    path: str  # the line
    area: str  # the same line closed down to the axis
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int
    height: int
    summary: str


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10.0 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def line_chart(points: list[tuple[date, float]], what: str) -> LineChart:
    """A zero-based line over days; ``what`` names the measure for the description."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = _nice_max(max((v for _, v in points), default=0))
    n = len(points)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return round(x, 1), round(PAD_TOP + plot_h * (1 - value / top), 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(coords))
    base = PAD_TOP + plot_h
    area = f"{path} L{coords[-1][0]},{base} L{coords[0][0]},{base} Z" if coords else ""
    y_ticks = [
        Tick(PAD_LEFT - 6, round(PAD_TOP + plot_h * (1 - f), 1), _number(top * f))
        for f in (0, 0.5, 1)
    ]
    picks = sorted({0, n // 2, n - 1}) if n else []
    x_ticks = [
        Tick(
            coords[i][0],
            base + 18,
            points[i][0].isoformat(),
            "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle",
        )
        for i in picks
    ]
    return LineChart(path, area, y_ticks, x_ticks, WIDTH, HEIGHT, describe(points, what))


def describe(points: list[tuple[date, float]], what: str) -> str:
    """One sentence a screen reader can say instead of the picture."""
    if not points:
        return f"No {what} in this range."
    values = [v for _, v in points]
    peak_day, peak = max(points, key=lambda p: p[1])
    low_day, low = min(points, key=lambda p: p[1])
    return (
        f"{what.capitalize()} per day from {points[0][0]} to {points[-1][0]}: "
        f"average {_number(sum(values) / len(values))}, highest {_number(peak)} on {peak_day}, "
        f"lowest {_number(low)} on {low_day}, last {_number(values[-1])}."
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    width: float  # 0..1 of the longest
    note: str


def bars(items: list[tuple[str, float, str]]) -> list[Bar]:
    """Horizontal bars scaled to the largest value (label, value, note)."""
    top = max((v for _, v, _ in items), default=0) or 1
    return [Bar(label, value, value / top, note) for label, value, note in items]
