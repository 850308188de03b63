"""Disk usage of the filesystems holding models and logs, computed the way df shows it."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from llm_upkeep.checks import CheckResult, Status


class DiskUsage(BaseModel):
    path: str = Field(description="Path as configured.")
    total_bytes: int | None = Field(default=None, description="Filesystem size.")
    used_bytes: int | None = Field(default=None, description="Bytes in use (size minus all free blocks).")
    free_bytes: int | None = Field(default=None, description="Bytes available to unprivileged users.")
    percent: float | None = Field(
        default=None, description="used / (used + free) * 100, as df's Use% (which rounds up)."
    )
    error: str | None = Field(default=None, description="Why the path could not be measured.")


def measure_disk(paths: list[str]) -> list[DiskUsage]:
    """One entry per path; a missing or unreadable path is an entry with error, never an exception."""
    out: list[DiskUsage] = []
    for path in paths:
        try:
            st = os.statvfs(os.path.expanduser(path))
        except OSError as e:
            out.append(DiskUsage(path=path, error=f"{type(e).__name__}: {e.strerror or e}"))
            continue
        total = st.f_blocks * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize
        # Blocks reserved for root count neither as used nor as available, exactly like df.
        percent = 100.0 * used / (used + free) if used + free else 0.0
        out.append(DiskUsage(path=path, total_bytes=total, used_bytes=used, free_bytes=free, percent=percent))
    return out


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_disk(usages: list[DiskUsage], alert_percent: float) -> list[CheckResult]:
    """Alert when the filesystem is fuller than alert_percent (for whole percents, the same as df's Use% -gt)."""
    out: list[CheckResult] = []
    for u in usages:
        if u.error is not None or u.percent is None:
            out.append(
                CheckResult(
                    check="disk_usage",
                    target=u.path,
                    status=Status.ERROR,
                    unit="%",
                    threshold=alert_percent,
                    detail=u.error or "not measured",
                )
            )
            continue
        over = u.percent > alert_percent
        out.append(
            CheckResult(
                check="disk_usage",
                target=u.path,
                status=Status.ALERT if over else Status.OK,
                value=round(u.percent, 2),
                unit="%",
                threshold=alert_percent,
                detail=f"{_human(u.used_bytes)} used, {_human(u.free_bytes)} free of {_human(u.total_bytes)}",
            )
        )
    return out
