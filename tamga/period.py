"""Periods of declaration dates: one type for the assistant's slots and the tools' calendars.

    Period.of_calendar("quarter", date(2025, 8, 14))   # 2025-07-01 .. 2025-10-01, "2025 Q3"
    Period(date(2024, 1, 1), date(2025, 1, 1), "year", name="2024", label="in 2024")

A period is [start, end): start inclusive, end exclusive. `name` is short, for tables and
titles ("2024", "2025 Q3", "last 12 months"); `label` is the period in a sentence ("in 2024",
"from March to August 2024"). Both default to calendar words when not given.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

CalendarKind = Literal["month", "quarter", "year"]
#: Months in one period of each calendar kind.
CALENDAR_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, the day clipped to the month's length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def month_name(day: date) -> str:
    """'March 2025'."""
    return f"{calendar.month_name[day.month]} {day.year}"


def short_month_name(day: date) -> str:
    """'Mar 2025'."""
    return f"{calendar.month_abbr[day.month]} {day.year}"


def calendar_name(kind: str, start: date) -> str:
    """The short name of a calendar period: '2025-10', '2025 Q3' or '2025'."""
    if kind == "month":
        return f"{start:%Y-%m}"
    if kind == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


@dataclass(frozen=True)
class Period:
    """A span of declaration dates [start, end) with its names for tables and sentences."""

    start: date
    end: date
    kind: str = "range"  # year | quarter | half | month | range | ytd | rolling | since | day
    name: str = ""  # short, for tables and titles: "2024", "2025 Q3", "March 2025"
    label: str = ""  # in a sentence: "in 2024", "from March to August 2024"
    partial: bool = False  # cut short by the end of the data

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", calendar_name(self.kind, self.start)
                               if self.kind in CALENDAR_MONTHS
                               else f"{self.start} to {self.last_day}")
        if not self.label:
            object.__setattr__(self, "label", f"in {self.name}")

    @classmethod
    def of_calendar(cls, kind: CalendarKind, day: date) -> Period:
        """The month, quarter or year that contains `day`."""
        if kind == "month":
            start = date(day.year, day.month, 1)
        elif kind == "quarter":
            start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        else:
            start = date(day.year, 1, 1)
        return cls(start, add_months(start, CALENDAR_MONTHS[kind]), kind)

    @property
    def last_day(self) -> date:
        """The last date inside the period."""
        return self.end - timedelta(days=1)

    @property
    def is_calendar(self) -> bool:
        """True for a whole calendar month, quarter or year."""
        return self.kind in CALENDAR_MONTHS

    def previous(self) -> Period:
        """The calendar period of the same kind just before this one (ValueError otherwise)."""
        if not self.is_calendar:
            raise ValueError(f"{self.name} is not a calendar month, quarter or year")
        start = add_months(self.start, -CALENDAR_MONTHS[self.kind])
        return Period(start, self.start, self.kind)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"from": self.start.isoformat(), "to": self.last_day.isoformat(),
                "name": self.name, "kind": self.kind}


def period_containing(day: date, kind: CalendarKind) -> Period:
    """The month, quarter or year that contains `day`."""
    return Period.of_calendar(kind, day)


def recent_periods(latest: date, kind: CalendarKind, count: int = 12) -> list[Period]:
    """The `count` latest periods of a kind, newest first, starting with the one of `latest`."""
    periods = [period_containing(latest, kind)]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return periods
