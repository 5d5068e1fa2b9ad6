"""Bar-chart geometry for the staff dashboard (pure: no database, no settings)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from gallery.charts import BAR_WIDTH, LEFT, PLOT_HEIGHT, RIGHT, SLOT, TOP, bar_chart, nice_axis_max

BASELINE = TOP + PLOT_HEIGHT
FIRST = date(2024, 12, 1)


def days(*values):
    return [(FIRST + timedelta(days=n), value) for n, value in enumerate(values)]


@pytest.mark.parametrize(
    ("top", "digits", "expected"),
    [
        (0, 0, "1"),
        (1, 0, "2"),  # an axis of 1 would put its middle line at 0.5 image
        (2, 0, "2"),
        (3, 0, "4"),
        (5, 0, "6"),
        (7, 0, "8"),
        (9, 0, "10"),
        (11, 0, "12"),
        (13, 0, "20"),  # 15 halves to 7.5
        (95, 0, "100"),
        (1000, 0, "1000"),
        (1001, 0, "1200"),
        (86400.0, 1, "100000"),
        (12.3, 1, "15"),
        (2.5, 1, "3"),  # 2.5 would halve to 1.25, which one digit cannot show
        (0.05, 1, "0.2"),  # the smallest axis whose middle (0.1) one digit can show
        (Decimal("0.0123"), 4, "0.015"),
        (Decimal("0.00001"), 4, "0.0002"),  # smallest axis with a labelled middle
        (0.0003, 4, "0.0004"),
    ],
)
def test_nice_axis_max(top, digits, expected) -> None:
    assert nice_axis_max(top, digits=digits) == Decimal(expected)


def test_bars_stand_on_the_baseline_in_slots() -> None:
    chart = bar_chart(days(1, 4, 2), digits=0)
    assert chart.axis_max == 4
    assert [bar.height for bar in chart.bars] == [PLOT_HEIGHT / 4, PLOT_HEIGHT, PLOT_HEIGHT / 2]
    for index, bar in enumerate(chart.bars):
        assert bar.y + bar.height == BASELINE
        assert bar.value_y < bar.y  # the value is written above the bar
        assert bar.x == LEFT + index * SLOT + (SLOT - BAR_WIDTH) / 2
        assert bar.center == bar.x + BAR_WIDTH / 2
    assert chart.bars[1].y == TOP
    assert chart.width == LEFT + 3 * SLOT + RIGHT
    assert chart.baseline == BASELINE < chart.day_label_y < chart.height


def test_ticks_are_zero_the_middle_and_the_maximum() -> None:
    chart = bar_chart(days(3, 1), digits=0)
    assert [(tick.value, tick.y) for tick in chart.ticks] == [
        (0, BASELINE),
        (2, BASELINE - PLOT_HEIGHT / 2),
        (4, TOP),
    ]


def test_summary_total_and_peak() -> None:
    chart = bar_chart(days(1, 5, 0, 5, 2), digits=0)
    assert chart.total == 13
    assert chart.peak is chart.bars[3]  # ties go to the latest day
    assert chart.peak.day == FIRST + timedelta(days=3)


def test_all_zero_days_have_flat_bars_and_an_axis_of_one() -> None:
    chart = bar_chart(days(*[0] * 14), digits=0)
    assert chart.axis_max == 1
    assert all(bar.height == 0 and bar.y == BASELINE for bar in chart.bars)
    assert chart.peak is None and chart.total == 0
    # The middle of 1 is 0.5: an images chart cannot label it, so it has no middle line.
    assert [tick.value for tick in chart.ticks] == [0, 1]
    assert [tick.value for tick in bar_chart(days(0.0, 0.0), digits=1).ticks] == [
        0,
        Decimal("0.5"),
        1,
    ]


def test_no_days() -> None:
    chart = bar_chart([], digits=0)
    assert chart.bars == [] and chart.axis_max == 1 and chart.peak is None and chart.total == 0


def test_a_single_huge_day_flattens_the_others_but_keeps_them_non_negative() -> None:
    chart = bar_chart(days(1, 2, 1_000_000, 3), digits=0)
    assert chart.axis_max == 1_000_000
    assert chart.bars[2].height == PLOT_HEIGHT and chart.bars[2].y == TOP
    assert all(0 <= bar.height < 1 for bar in chart.bars if bar is not chart.bars[2])
    assert chart.peak is chart.bars[2]


def test_fractional_costs_with_four_digits() -> None:
    costs = [Decimal("0.0012"), Decimal("0"), Decimal("0.0123"), Decimal("0.0001")]
    chart = bar_chart(days(*costs), digits=4)
    assert chart.axis_max == Decimal("0.015")
    assert [tick.value for tick in chart.ticks] == [0, Decimal("0.0075"), Decimal("0.015")]
    assert chart.total == Decimal("0.0136")
    assert chart.bars[0].value == Decimal("0.0012")  # the value itself, for the template to format
    assert chart.bars[2].height == pytest.approx(PLOT_HEIGHT * 0.0123 / 0.015, abs=0.01)
    assert chart.bars[1].height == 0


def test_float_seconds_are_read_as_written_not_as_their_binary_expansion() -> None:
    # Decimal(0.2) is 0.2000000000000000111…, which would need an axis of 0.4.
    chart = bar_chart(days(0.2, 0.1), digits=1)
    assert chart.axis_max == Decimal("0.2")
    assert chart.bars[0].height == PLOT_HEIGHT
    assert chart.total == Decimal("0.3")


def test_day_labels_every_other_day_for_two_weeks_ending_today() -> None:
    two_weeks = bar_chart(days(*range(14)), digits=0)
    labelled = [bar.day.day for bar in two_weeks.bars if bar.labelled]
    assert labelled == [2, 4, 6, 8, 10, 12, 14]
    assert all(bar.labelled for bar in bar_chart(days(*range(7)), digits=0).bars)
