"""Statutory deadlines: a calendar month for right of access, 20 working days for FOI."""

from datetime import date

import pytest

from requests_portal.deadlines import add_calendar_month, foi_due, right_of_access_due


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2025, 1, 31), date(2025, 2, 28)),  # no 31 February: the month's last day (a Friday)
        (date(2028, 1, 31), date(2028, 2, 29)),  # a leap year
        (date(2026, 1, 31), date(2026, 3, 2)),  # 28 February 2026 is a Saturday: next working day
        (date(2026, 3, 15), date(2026, 4, 15)),
        (date(2026, 11, 30), date(2026, 12, 30)),
        (date(2026, 12, 31), date(2027, 2, 1)),  # 31 January 2027 is a Sunday
    ],
)
def test_right_of_access_is_due_one_calendar_month_after_receipt(received, due):
    assert right_of_access_due(received) == due


def test_a_calendar_month_keeps_the_day_or_takes_the_months_last():
    assert add_calendar_month(date(2026, 1, 31)) == date(2026, 2, 28)
    assert add_calendar_month(date(2026, 12, 5)) == date(2027, 1, 5)


def test_foi_counts_twenty_working_days_across_the_christmas_bank_holidays():
    # Received Friday 11 December 2026. Not counted: weekends, Christmas Day (Fri 25), Boxing Day
    # observed (Mon 28 December) and New Year's Day (Fri 1 January 2027).
    assert foi_due(date(2026, 12, 11)) == date(2027, 1, 13)


def test_foi_across_easter_and_a_receipt_on_a_weekend():
    # Received Saturday 28 March 2026; Good Friday 3 April and Easter Monday 6 April 2026.
    assert foi_due(date(2026, 3, 28)) == date(2026, 4, 28)
    assert foi_due(date(2026, 6, 1)) == date(2026, 6, 29)  # no holidays: four weeks
