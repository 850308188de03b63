"""Host parts of a fleet flow, as the central flow sees them: one row per host, never silently
missing.

A coordinated flow (daily health, weekly review, cost review, security audit, runbook) dispatches
its host-local part to each host's queue and waits for it with a deadline; each part comes back
as a :class:`HostPart`: ok/degraded with its typed result, failed (the run failed or crashed), or
missing (not finished by the deadline: the worker is down, the host is late, or the run died
without reporting). Missing and failed parts become alert checks, so the report shows the host
and the alert names it.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from llm_upkeep.checks import CheckResult, Status

PartStatus = Literal["ok", "degraded", "failed", "missing"]
T = TypeVar("T", bound=BaseModel)


class HostPart(BaseModel):
    """What one host's part of a fleet run came back as."""

    host: str = Field(description="Fleet host the part ran (or should have run) on.")
    status: PartStatus = Field(description="ok, degraded (ran, found problems), failed, missing.")
    state: str | None = Field(default=None, description="Prefect state name of the part's flow run.")
    flow_run_id: str | None = Field(default=None, description="The part's flow run, when one was created.")
    detail: str = Field(default="", description="Why failed or missing; the part's own summary otherwise.")
    seconds: float | None = Field(default=None, description="Wall time from dispatch to the result.")
    data: dict[str, Any] | None = Field(
        default=None, description="The part's typed result as JSON (read it back with parse())."
    )

    @property
    def ran(self) -> bool:
        return self.status in ("ok", "degraded")

    def parse(self, model: type[T]) -> T | None:
        return model.model_validate(self.data) if self.data is not None and self.ran else None

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"data"})


def part_status(result_status: str | None) -> PartStatus:
    """A part's own result status folded to ok/degraded (anything not ok is worth a look)."""
    return "ok" if result_status in ("ok", "skipped", None) else "degraded"


def missing_reason(state: str | None, timeout_s: float) -> str:
    """Why a part did not finish, from the state its run was left in at the deadline."""
    if state in (None, "Scheduled", "Late", "Pending"):
        return (f"not started within {timeout_s:g} s (state {state or 'none'}): the host's worker "
                "is down or busy")  # fmt: skip
    if state == "Running":
        return f"still running after {timeout_s:g} s: late, or its worker died mid-run"
    return f"not finished after {timeout_s:g} s (state {state})"


def part_checks(parts: list[HostPart], what: str) -> list[CheckResult]:
    """One check per host: ok when its part ran, alert when it failed or is missing."""
    out = []
    for p in parts:
        if p.ran:
            status = Status.OK if p.status == "ok" else Status.WARN
        else:
            status = Status.ALERT
        out.append(CheckResult(check=f"{what}_host_part", target=p.host, status=status, value=p.status,
                               detail=p.detail or (p.state or "")))  # fmt: skip
    return out


def render_hosts(parts: list[HostPart], title: str = "Hosts") -> str:
    """A markdown table: one row per host, missing hosts included."""
    lines = [f"## {title}", "", "| host | part | state | seconds | detail |", "|---|---|---|---|---|"]
    for p in parts:
        mark = {"ok": "ok", "degraded": "degraded", "failed": "**FAILED**", "missing": "**MISSING**"}[p.status]
        secs = "" if p.seconds is None else f"{p.seconds:.1f}"
        detail = (p.detail or "").replace("|", "/").replace("\n", " ")[:300]
        lines.append(f"| {p.host} | {mark} | {p.state or ''} | {secs} | {detail} |")
    return "\n".join(lines) + "\n"


def prefix_checks(checks: list[CheckResult], host: str) -> list[CheckResult]:
    """A host part's checks with the host in the target (gpu0 on two hosts are two GPUs)."""
    return [c.model_copy(update={"target": f"{host}/{c.target}"}) for c in checks]
