"""Statutory deadlines, by the ICO's rules.

Right of access (DPA 2018 s.45/s.54): one calendar month, counted from the day of receipt (or of
receipt of identity evidence, when it was asked for): the corresponding date of the next month, or
its last day when there is none (31 January -> 28/29 February); a deadline on a weekend or bank
holiday moves to the next working day. No extension in Part 3.
Freedom of Information (s.10 FOIA): 20 working days, counting from the first working day after
receipt; weekends and England and Wales bank holidays (the `holidays` package) are not counted.
Dates are London dates.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings

LONDON = ZoneInfo(settings.TIME_ZONE)  # the statutory clocks run on the force's calendar


@cache
def _bank_holidays(year: int) -> holidays.HolidayBase:
    return holidays.UK(subdiv="ENG", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def next_working_day(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def london_date(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def add_calendar_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def right_of_access_due(received: date) -> date:
    return next_working_day(add_calendar_month(received))


def foi_due(received: date) -> date:
    day, counted = received, 0
    while counted < 20:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day
