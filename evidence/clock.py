"""Camera clocks: whether a clip's start can be believed, and the deletion date that follows.

A camera stamps its clips with its own clock. A flat clock battery resets it to 1970 (or leaves no
time at all), a bad setting puts it in the future, and a start of decades ago would make the sweep
erase a clip the night it arrives, when the camera's own copy is already wiped. So:

- a start is *clock suspect* when it is before 2000, before the camera was registered, more than
  MAX_CLOCK_SKEW ahead of the server's clock when the clip arrives, or when the dock had no time
  from the camera and took the file's (`time_source=file`);
- a suspect clip's retention is counted from its arrival, and it is attributed to whoever held the
  camera then, until a borough admin corrects the time (evidence.services.recording_correct_time);
- no recording's deletion date is less than BWV_MIN_REVIEW_DAYS after it reached the server, so a
  camera docked late is not erased before anyone could look (0 switches the window off).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils.module_loading import import_string

from devices.models import Camera
from devices.selectors import camera_registered_at
from evidence.models import ClockSuspect

MAX_CLOCK_SKEW = timedelta(days=1)
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
TIME_SOURCES = ("camera", "file")


def retention_days() -> int:
    """The retention period new footage is dated with. It is the retention app's to say (its
    default policy), and this app sits below it: the question goes through the function the
    project's settings name (BWV_RETENTION_PERIOD), never an import of the app above."""
    return import_string(settings.BWV_RETENTION_PERIOD)()


def clock_suspect_reason(
    *, camera: Camera, started_at: datetime, now: datetime, time_source: str = "camera"
) -> str:
    """Why `started_at` cannot be believed for a clip of `camera` arriving at `now`, or ""."""
    if time_source == "file":
        return ClockSuspect.FILE_TIME
    if started_at < EARLIEST_PLAUSIBLE:
        return ClockSuspect.BEFORE_2000
    if started_at > now + MAX_CLOCK_SKEW:
        return ClockSuspect.AHEAD
    if started_at < camera_registered_at(camera=camera):
        return ClockSuspect.BEFORE_REGISTRATION
    return ""


def review_window() -> timedelta:
    return timedelta(days=settings.BWV_MIN_REVIEW_DAYS)


def deletion_date(
    *, started_at: datetime, arrived_at: datetime, suspect: bool
) -> tuple[datetime, bool]:
    """When a recording that reached the server at `arrived_at` may be deleted, and whether the
    review window (rather than the retention period) set that date."""
    counted_from = arrived_at if suspect else started_at
    by_retention = counted_from + timedelta(days=retention_days())
    by_window = arrived_at + review_window()
    if settings.BWV_MIN_REVIEW_DAYS and by_window > by_retention:
        return by_window, True
    return by_retention, False
