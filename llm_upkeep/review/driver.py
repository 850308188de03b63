"""Driver check: is the installed NVIDIA driver (and its CUDA version) the one approved for production?

The playbook: keep drivers current, but test on staging first. So drift either way is reported:
newer than approved means an untested driver in production, older means an update is due.
"""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd
from pydantic import BaseModel, Field

from llm_upkeep.checks import SEVERITY, CheckResult, Status
from llm_upkeep.telemetry import GpuSnapshot


class DriverReview(BaseModel):
    verdict: Status = Field(description="ok, warn (drift), skipped (nothing to compare).")
    summary: str = Field(description="One line.")
    installed_driver: str | None = Field(default=None, description="Driver version found.")
    installed_cuda: str | None = Field(default=None, description="CUDA version the driver supports.")
    approved_driver: str | None = Field(default=None, description="gpu.approved_driver.")
    approved_cuda: str | None = Field(default=None, description="gpu.approved_cuda.")
    source: str | None = Field(default=None, description="'nvml' (read now) or 'history' (last sample).")
    seen_this_week: list[str] = Field(
        default_factory=list, description="Driver versions in this week's samples."
    )
    checks: list[CheckResult] = Field(default_factory=list, description="driver_version and cuda_version.")


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _compare(check: str, what: str, installed: str | None, approved: str | None, key: str) -> CheckResult:
    if not approved:
        return CheckResult(check=check, target="nvidia", status=Status.SKIPPED, value=installed,
                           detail=f"no approved {what} configured ({key})")  # fmt: skip
    if not installed:
        return CheckResult(check=check, target="nvidia", status=Status.SKIPPED,
                           detail=f"installed {what} unknown (no NVML reading, no history)")  # fmt: skip
    a, b = version_key(installed), version_key(approved)
    if a == b:
        return CheckResult(check=check, target="nvidia", status=Status.OK, value=installed,
                           detail=f"{what} {installed} is the approved version")  # fmt: skip
    if a > b:
        why = (f"{what} {installed} is newer than the approved {approved}: untested in production; "
               f"test on staging, then approve it ({key})")  # fmt: skip
    else:
        why = f"{what} {installed} is older than the approved {approved}: update it (after a staging test)"
    return CheckResult(check=check, target="nvidia", status=Status.WARN, value=installed, detail=why)


def check_driver(
    snapshot: GpuSnapshot | None,
    approved_driver: str | None,
    approved_cuda: str | None,
    samples: pd.DataFrame | None = None,
) -> DriverReview:
    """Compare what NVML says now (else the newest history sample) with the approved versions."""
    driver = cuda = source = None
    if snapshot is not None and snapshot.status == "ok" and snapshot.driver_version:
        driver, cuda, source = snapshot.driver_version, snapshot.cuda_version, "nvml"
    seen: list[str] = []
    last_ts: datetime | None = None
    if samples is not None and not samples.empty and "driver_version" in samples:
        known = samples.dropna(subset=["driver_version"]).sort_values("ts")
        seen = list(dict.fromkeys(known["driver_version"]))
        if driver is None and not known.empty:
            row = known.iloc[-1]
            driver, source, last_ts = row["driver_version"], "history", row["ts"].to_pydatetime()
            cuda = row["cuda_version"] if isinstance(row.get("cuda_version"), str) else None
    checks = [
        _compare("driver_version", "driver", driver, approved_driver, "gpu.approved_driver"),
        _compare("cuda_version", "CUDA", cuda, approved_cuda, "gpu.approved_cuda"),
    ]
    verdict = max(checks, key=lambda c: SEVERITY[c.status]).status
    if driver is None:
        reason = snapshot.reason if snapshot is not None and snapshot.reason else "no NVML reading"
        summary = f"driver unknown: {reason}; no GPU samples in history"
    else:
        summary = f"driver {driver} (CUDA {cuda or '?'})"
        if source == "history" and last_ts is not None:
            summary += f" from the sample at {last_ts:%Y-%m-%d %H:%M} UTC"
        drift = [c.detail for c in checks if c.status == Status.WARN]
        summary += ": " + (
            "; ".join(drift)
            if drift
            else ("approved" if verdict == Status.OK else "nothing approved to compare")
        )
    if len(seen) > 1:
        summary += f"; changed this week: {' -> '.join(seen)}"
    return DriverReview(
        verdict=verdict, summary=summary, installed_driver=driver, installed_cuda=cuda,
        approved_driver=approved_driver, approved_cuda=approved_cuda, source=source, seen_this_week=seen, checks=checks,
    )  # fmt: skip
