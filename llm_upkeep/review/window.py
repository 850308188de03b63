"""The review week and the baseline weeks before it, on whole UTC hours (volume is per hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field


class ReviewWindow(BaseModel):
    start: datetime = Field(description="First instant of the review week (UTC, inclusive).")
    end: datetime = Field(description="End of the review week (UTC, exclusive).")
    baseline_start: datetime = Field(description="Start of the baseline weeks before the review week (UTC).")

    @property
    def start_s(self) -> float:
        return self.start.timestamp()

    @property
    def end_s(self) -> float:
        return self.end.timestamp()

    @property
    def baseline_start_s(self) -> float:
        return self.baseline_start.timestamp()

    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


def review_window(end: datetime | None = None, *, baseline_weeks: int = 4, days: int = 7) -> ReviewWindow:
    """The `days` before `end` (default now), end rounded down to the hour so no hour is partial."""
    if end is None:
        end = datetime.now(UTC)
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    end = end.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    return ReviewWindow(start=start, end=end, baseline_start=start - timedelta(weeks=baseline_weeks))
