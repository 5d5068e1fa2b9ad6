"""Geometry for the staff dashboard's inline SVG bar charts.

Presentation only: the numbers come from selectors, the template formats and localises them.
All coordinates are in the SVG's viewBox units, which the stylesheet renders one to one with
CSS pixels (shrinking on narrow screens), so the text sizes in it are real sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Room for the y labels on the left ("100000.0", "0.0150"), for a bar's value above the tallest
# bar, and for the day labels below the axis.
LEFT = 60
RIGHT = 12  # half of the widest day label ("十二月 16") past the last slot's centre
TOP = 16
PLOT_HEIGHT = 120
BOTTOM = 18
# A slot is wide enough for a seven-character value ("86400.0", "0.0012") at 10 px.
SLOT = 40
BAR_WIDTH = 28

# "Nice" axis maxima are these times a power of ten.
_MANTISSAS = tuple(Decimal(m) for m in ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "8"))


@dataclass(frozen=True)
class Bar:
    day: date
    value: float | Decimal
    x: float  # left edge of the rect
    y: float  # top edge of the rect
    height: float
    center: float  # x of the value and day labels
    value_y: float  # baseline of the value written above the bar
    labelled: bool  # whether the x axis shows this day's label (every other day when crowded)


@dataclass(frozen=True)
class Tick:
    value: Decimal
    y: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    ticks: list[Tick]  # bottom to top: 0, the middle, the axis maximum
    axis_max: Decimal
    total: Decimal
    peak: Bar | None  # the highest day (the latest on ties); None when every day is zero
    width: float
    height: float
    bar_width: float
    left: float  # x of the y axis
    tick_label_x: float  # right edge of the y labels
    right: float  # x where the gridlines end
    top: float  # y of the axis maximum
    baseline: float  # y of the x axis
    day_label_y: float


def nice_axis_max(top: float | Decimal, *, digits: int) -> Decimal:
    """The smallest "nice" number ≥ top whose half is a whole number of the chart's last digit.

    The half matters because the middle gridline is labelled with the chart's digits: an
    images chart (digits 0) topping out at 5 gets an axis of 6 (middle 3), not 5 (middle 2.5).
    All-zero data get an axis of 1, so bars have zero height instead of dividing by zero.
    """
    top = _decimal(top)
    if top <= 0:
        return Decimal(1)
    quantum = Decimal(1).scaleb(-digits)
    exponent = top.adjusted()
    while True:  # ends by the decade above top or 2 * quantum, whichever is larger
        for mantissa in _MANTISSAS:
            candidate = mantissa.scaleb(exponent)
            if candidate >= top and (candidate / 2) % quantum == 0:
                return candidate
        exponent += 1


def bar_chart(points: Sequence[tuple[date, float | Decimal]], *, digits: int) -> BarChart:
    """Bars, y ticks and x labels for one value per day, oldest day first."""
    values = [_decimal(value) for _, value in points]
    axis_max = nice_axis_max(max(values, default=Decimal(0)), digits=digits)
    baseline = TOP + PLOT_HEIGHT

    def y_of(value: Decimal) -> float:
        return round(baseline - float(value / axis_max) * PLOT_HEIGHT, 2)

    # At most seven day labels fit under the bars in any language ("Dec 16", "十二月 16"); the
    # latest day is always labelled.
    every = max(1, math.ceil(len(points) / 7))
    bars = []
    for index, ((day, value), exact) in enumerate(zip(points, values, strict=True)):
        top = y_of(max(exact, Decimal(0)))
        bars.append(
            Bar(
                day=day,
                value=value,
                x=LEFT + index * SLOT + (SLOT - BAR_WIDTH) / 2,
                y=top,
                height=round(baseline - top, 2),
                center=LEFT + index * SLOT + SLOT / 2,
                value_y=round(top - 3, 2),
                labelled=(len(points) - 1 - index) % every == 0,
            )
        )
    middle = axis_max / 2
    ticks = [Tick(value=Decimal(0), y=baseline)]
    if middle % Decimal(1).scaleb(-digits) == 0:  # not for an all-zero images chart (0.5)
        ticks.append(Tick(value=middle, y=y_of(middle)))
    ticks.append(Tick(value=axis_max, y=y_of(axis_max)))
    peak, peak_value = None, Decimal(0)
    for bar, exact in zip(bars, values, strict=True):
        if exact > 0 and exact >= peak_value:
            peak, peak_value = bar, exact
    right = LEFT + len(points) * SLOT
    return BarChart(
        bars=bars,
        ticks=ticks,
        axis_max=axis_max,
        total=sum(values, Decimal(0)),
        peak=peak,
        width=right + RIGHT,
        height=baseline + BOTTOM,
        bar_width=BAR_WIDTH,
        left=LEFT,
        tick_label_x=LEFT - 4,
        right=right,
        top=TOP,
        baseline=baseline,
        day_label_y=baseline + 13,
    )


def _decimal(value: float | Decimal) -> Decimal:
    # Through str so 0.1 stays 0.1 rather than its binary expansion.
    return value if isinstance(value, Decimal) else Decimal(str(value))
