"""Chart geometry for server-rendered SVG: values in, rectangles out. Pure, no I/O.

The templates draw what these return with SVG presentation attributes and CSS classes,
so the charts need neither a script nor an inline style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE_SIZE = 6


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    series: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    axis_max: int
    ticks: tuple[tuple[float, int], ...]
    labels: tuple[tuple[float, str], ...]
    legend: tuple[tuple[int, str], ...]


def nice_max(value: int) -> int:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    magnitude: int = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def horizontal(items: Sequence[tuple[str, int]], *, width: int = 560, row: int = 26) -> Chart:
    """One bar per item, longest value fills the plot; labels sit left of the bars."""
    left = 230
    plot = width - left - 60
    axis = nice_max(max((v for _, v in items), default=0))
    bars = tuple(
        Bar(label, value, left, i * row + 4, plot * value / axis, row - 8, i % PALETTE_SIZE)
        for i, (label, value) in enumerate(items)
    )
    return Chart(width, max(row, len(items) * row + 8), bars, axis, (), (), ())


def stacked_columns(
    columns: Sequence[str],
    series: Sequence[str],
    values: dict[tuple[str, str], int],
    *,
    width: int = 640,
    height: int = 220,
) -> Chart:
    """A column per `columns` entry (a day), stacked by `series` (partner and direction)."""
    left, bottom, top = 48, 28, 8
    plot_w = width - left - 8
    plot_h = height - bottom - top
    totals = [sum(values.get((c, s), 0) for s in series) for c in columns]
    axis = nice_max(max(totals, default=0))
    slot = plot_w / max(1, len(columns))
    bar_w = max(2.0, slot * 0.7)
    bars: list[Bar] = []
    for i, column in enumerate(columns):
        base = float(height - bottom)
        for j, name in enumerate(series):
            value = values.get((column, name), 0)
            if not value:
                continue
            h = plot_h * value / axis
            base -= h
            bars.append(
                Bar(
                    f"{column} {name}",
                    value,
                    left + i * slot + (slot - bar_w) / 2,
                    base,
                    bar_w,
                    h,
                    j % PALETTE_SIZE,
                )
            )
    ticks = tuple((height - bottom - plot_h * f, round(axis * f)) for f in (0.0, 0.5, 1.0))
    step = max(1, len(columns) // 7)
    labels = tuple((left + i * slot + slot / 2, c) for i, c in enumerate(columns) if i % step == 0)
    legend = tuple((j % PALETTE_SIZE, name) for j, name in enumerate(series))
    return Chart(width, height, tuple(bars), axis, ticks, labels, legend)
