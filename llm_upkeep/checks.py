"""The one result shape every check produces, so reports, alerts and JSON agree."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    ALERT = "alert"
    ERROR = "error"
    SKIPPED = "skipped"


# Worst first; used to fold many checks into one verdict.
SEVERITY = {Status.ERROR: 4, Status.ALERT: 3, Status.WARN: 2, Status.SKIPPED: 1, Status.OK: 0}


class CheckResult(BaseModel):
    """One measured fact against its threshold."""

    check: str = Field(description="Check name, e.g. ttft, gpu_memory, disk_usage.")
    target: str = Field(description="What was checked: endpoint name, GPU index, path.")
    status: Status = Field(description="ok, warn, alert, error (could not measure) or skipped.")
    value: float | int | str | None = Field(default=None, description="Measured value.")
    unit: str | None = Field(default=None, description="Unit of value and threshold.")
    threshold: float | int | None = Field(default=None, description="Alert threshold, if any.")
    detail: str = Field(default="", description="Human-readable explanation or error class.")
    data: dict[str, Any] = Field(
        default_factory=dict, exclude=True, description="Extra evidence, not in JSON."
    )

    @property
    def failing(self) -> bool:
        return self.status in (Status.ALERT, Status.ERROR)

    def public(self) -> dict[str, Any]:
        """The JSON contract: exactly the documented keys."""
        d = self.model_dump(mode="json")
        return {k: d[k] for k in ("check", "target", "status", "value", "unit", "threshold", "detail")}


def overall_status(checks: list[CheckResult]) -> str:
    """ok when every check is ok or skipped; degraded when any warns/alerts/errors."""
    if any(c.status in (Status.WARN, Status.ALERT, Status.ERROR) for c in checks):
        return "degraded"
    return "ok"
