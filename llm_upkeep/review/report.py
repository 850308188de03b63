"""The weekly report: one result shape for JSON, markdown, table artifacts and the Slack summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from llm_upkeep.alerts import Delivery
from llm_upkeep.checks import SEVERITY, CheckResult, Status
from llm_upkeep.fleet_parts import HostPart
from llm_upkeep.redact import redact
from llm_upkeep.review.driver import DriverReview
from llm_upkeep.review.errors import CLASS_LABELS, ErrorReview
from llm_upkeep.review.logscan import CLASSES
from llm_upkeep.review.temperature import TemperatureReview
from llm_upkeep.review.updates import UpdateReview
from llm_upkeep.trends.review import TrendsReview, render_trends_md

SECTIONS = ("errors", "gpu_temperature", "model_updates", "driver", "trends")
TITLES = {
    "errors": "Error logs",
    "gpu_temperature": "GPU temperatures",
    "model_updates": "Model updates",
    "driver": "Driver",
    "trends": "Trends",
}
_ICON = {"ok": "✅", "warn": "⚠️", "alert": "🚨", "error": "❌", "skipped": "⏭️"}


class SectionResult(BaseModel):
    verdict: Status = Field(description="ok, warn, alert, error (could not check) or skipped.")
    summary: str = Field(description="One line.")
    checks: list[CheckResult] = Field(default_factory=list, description="Checks, for history and alerts.")
    details: dict[str, Any] = Field(default_factory=dict, description="Section-specific data (JSON).")

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "summary": self.summary,
            "checks": [c.public() for c in self.checks],
            **self.details,
        }


def section_from(
    review: ErrorReview | TemperatureReview | UpdateReview | DriverReview | TrendsReview,
) -> SectionResult:
    details = review.model_dump(mode="json", exclude={"verdict", "summary", "checks"})
    return SectionResult(
        verdict=review.verdict, summary=review.summary, checks=review.checks, details=details
    )


def failed_section(what: str, exc: BaseException) -> SectionResult:
    """A chore that crashed is reported as an error, never as a silent ok."""
    msg = redact(f"{type(exc).__name__}: {exc}")[:500]
    return SectionResult(
        verdict=Status.ERROR, summary=f"{what} failed: {msg}",
        checks=[CheckResult(check=f"review_{what}", target="run", status=Status.ERROR, detail=msg)],
    )  # fmt: skip


class WeeklyReviewResult(BaseModel):
    flow: str = Field(default="weekly-review", description="Flow name, for JSON consumers.")
    status: str = Field(description="ok when every section is ok or skipped; degraded otherwise.")
    window_start: datetime = Field(description="Review week start (UTC).")
    window_end: datetime = Field(description="Review week end (UTC).")
    sections: dict[str, SectionResult] = Field(description="errors, gpu_temperature, model_updates, driver.")
    alerts: list[Delivery] = Field(default_factory=list, description="Slack summary delivery.")
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="Start (UTC).")
    duration_s: float = Field(default=0.0, description="Wall time of the run.")
    hosts: list[HostPart] = Field(
        default_factory=list, description="Fleet: each host's part (logs, temperatures, driver), missing ones included."
    )

    @property
    def checks(self) -> list[CheckResult]:
        return [c for s in self.sections.values() for c in s.checks]

    def to_json(self) -> dict[str, Any]:
        """The CLI contract: exactly flow, status and the four sections."""
        return {
            "flow": self.flow,
            "status": self.status,
            "sections": {k: self.sections[k].to_json() for k in SECTIONS if k in self.sections},
        }


def overall(sections: dict[str, SectionResult]) -> str:
    return "ok" if all(s.verdict in (Status.OK, Status.SKIPPED) for s in sections.values()) else "degraded"


def _md(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _code(lines: list[str]) -> list[str]:
    if not lines:
        return []
    body = [redact(x).replace("```", "'''") for x in lines]
    return ["  ```", *[f"  {x}" for x in body], "  ```"]


def _errors_md(d: dict[str, Any], s: SectionResult) -> list[str]:
    out: list[str] = []
    findings = d.get("findings") or []
    if findings:
        out += ["### Findings", ""]
        for f in findings:
            icon = _ICON["alert" if f["severity"] == "alert" else "warn"]
            out.append(
                f"- {icon} **{_md(f['title'])}**" + (f" {_md(f['detail'])}." if f.get("detail") else "")
            )
            if f.get("action"):
                out.append(f"  Action: {_md(f['action'])}")
            out += _code(f.get("evidence") or [])
        out.append("")
    days = d.get("counts_by_day") or {}
    if days:
        out += [
            "### Counts per day",
            "",
            "| day | " + " | ".join(CLASSES) + " |",
            "|---|" + "---:|" * len(CLASSES),
        ]
        for day, row in days.items():
            out.append(f"| {day} | " + " | ".join(str(row.get(c, 0)) for c in CLASSES) + " |")
        totals = d.get("totals") or {}
        out.append("| **total** | " + " | ".join(f"**{totals.get(c, 0)}**" for c in CLASSES) + " |")
        out.append("")
    top = d.get("top_repeated") or []
    if top:
        out += [
            "### Most repeated failures",
            "",
            "| count | class | message (normalized) | sources |",
            "|---:|---|---|---|",
        ]
        for r in top:
            out.append(
                f"| {r['count']} | {r['cls']} | `{_md(r['message'])[:160]}` | {', '.join(r['sources'])} |"
            )
        out.append("")
    notes = d.get("volume_notes") or []
    if notes:
        out += ["Request volume: " + "; ".join(_md(n) for n in notes), ""]
    if d.get("files") is not None and s.verdict != Status.SKIPPED:
        out += [f"Read {d.get('files', 0)} file(s), {d.get('lines_scanned', 0):,} lines, "
                f"{d.get('bytes_scanned', 0) / 1e6:,.1f} MB.", ""]  # fmt: skip
    return out


def _temp_md(d: dict[str, Any]) -> list[str]:
    gpus = d.get("gpus") or []
    if not gpus:
        return []
    out = ["| GPU | status | samples | max °C | p95 °C | longest > limit | longest near slowdown | thermal / power throttle |",
           "|---|---|---:|---:|---:|---|---|---|"]  # fmt: skip
    for g in gpus:

        def st(x):
            return f"{x['minutes'] / 60:.1f} h" + (f" from {x['start'][:16]}" if x.get("start") else "")

        gid = f"{g['gpu']}" if g["host"] == "local" else f"{g['host']}:{g['gpu']}"
        out.append(
            f"| {gid} {_md(g.get('name') or '')} | {_ICON[g['status']]} {g['status']} | {g['samples']} | "
            f"{g['max_c'] if g['max_c'] is not None else '—'} | {g['p95_c'] if g['p95_c'] is not None else '—'} | "
            f"{st(g['above_limit'])} | {st(g['above_slowdown_margin'])} | "
            f"{g['thermal_throttle_samples']} / {g['power_throttle_samples']} |"
        )
    out.append("")
    for g in gpus:
        if g["status"] in ("alert", "warn"):
            out.append(f"- GPU {g['gpu']}: {_md(g['detail'])}")
    return out + [""]


def _pinned_from(m: dict[str, Any]) -> str:
    src = m.get("pinned_from")
    return f" ({_md(src)})" if src and src != "config" else ""


def _updates_md(d: dict[str, Any]) -> list[str]:
    models = d.get("models") or []
    if not models:
        return []
    out = [
        "| model | source | ref | status | pinned | registry now | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in models:
        out.append(
            f"| {_md(m['name'])} | {m['source']} | {_md(m['ref'])} | {m['status']} | "
            f"`{(m.get('pinned_digest') or '—')[:19]}`{_pinned_from(m)} | `{(m.get('current_digest') or '—')[:19]}` | "
            f"{_md(m['detail'])} |"
        )
    cands = d.get("candidates") or []
    if cands:  # review/discovery.py: newer tags, quantizations, sibling repos
        out += ["", "Candidates to evaluate (not pulled):", "", "| family | candidate | why | evaluate with |",
                "|---|---|---|---|"]  # fmt: skip
        out += [f"| {_md(c['family'])} | {_md(c['name'])} | {_md(c['why'])} | `{c['command']}` |" for c in cands]
    out += [f"- {_md(n)}" for n in d.get("candidate_notes") or []]
    return out + ["", "Nothing was updated: pinned versions stay until a staging test passes.", ""]


def _driver_md(d: dict[str, Any]) -> list[str]:
    return [
        f"- installed: driver {d.get('installed_driver') or '?'}, CUDA {d.get('installed_cuda') or '?'}"
        + (f" (from {d['source']})" if d.get("source") else ""),
        f"- approved: driver {d.get('approved_driver') or 'not set'}, CUDA {d.get('approved_cuda') or 'not set'}",
        "",
    ]


def render_report(result: WeeklyReviewResult) -> str:
    """The markdown weekly report: one section per chore, each with its verdict first."""
    lines = [
        f"# Weekly review: {result.status.upper()}",
        "",
        f"Week {result.window_start:%Y-%m-%d %H:%M} to {result.window_end:%Y-%m-%d %H:%M} UTC; "
        f"run {result.started_at:%Y-%m-%d %H:%M} UTC in {result.duration_s:.1f} s.",
        "",
        "| chore | verdict | summary |",
        "|---|---|---|",
    ]
    for k in SECTIONS:
        s = result.sections.get(k)
        if s:
            lines.append(f"| {TITLES[k]} | {_ICON[s.verdict]} {s.verdict} | {_md(s.summary)} |")
    lines.append("")
    render = {"errors": None, "gpu_temperature": _temp_md, "model_updates": _updates_md, "driver": _driver_md,
              "trends": render_trends_md}  # fmt: skip
    for k in SECTIONS:
        s = result.sections.get(k)
        if s is None:
            continue
        lines += [f"## {TITLES[k]}: {_ICON[s.verdict]} {str(s.verdict).upper()}", "", _md(s.summary), ""]
        lines += _errors_md(s.details, s) if k == "errors" else render[k](s.details)
        bad = [c for c in s.checks if c.status == Status.ERROR]
        for c in bad:
            lines.append(f"- ❌ {c.check} {c.target}: {_md(c.detail)}")
        if bad:
            lines.append("")
    if result.alerts:
        lines += ["## Slack", ""] + [
            f"- {d.status}" + (f": {d.error}" if d.error else "") for d in result.alerts
        ]
    return redact("\n".join(lines).rstrip() + "\n")


def count_tables(result: WeeklyReviewResult) -> dict[str, list[dict[str, Any]]]:
    """Table artifacts (key -> rows): counts per day and class, GPU heat, model updates."""
    tables: dict[str, list[dict[str, Any]]] = {}
    e = result.sections.get("errors")
    if e and e.details.get("counts_by_day"):
        tables["weekly-review-error-counts"] = [
            {"day": day, **{c: row.get(c, 0) for c in CLASSES}}
            for day, row in e.details["counts_by_day"].items()
        ]
    if e and e.details.get("top_repeated"):
        tables["weekly-review-repeated-failures"] = [
            {
                "count": r["count"],
                "class": r["cls"],
                "message": r["message"],
                "sources": ", ".join(r["sources"]),
            }
            for r in e.details["top_repeated"]
        ]
    t = result.sections.get("gpu_temperature")
    if t and t.details.get("gpus"):
        tables["weekly-review-gpu-temperatures"] = [
            {"host": g["host"], "gpu": g["gpu"], "status": g["status"], "samples": g["samples"], "max_c": g["max_c"],
             "p95_c": g["p95_c"], "hours_above_limit": round(g["above_limit"]["minutes"] / 60, 2),
             "hours_near_slowdown": round(g["above_slowdown_margin"]["minutes"] / 60, 2),
             "thermal_throttle_samples": g["thermal_throttle_samples"],
             "power_throttle_samples": g["power_throttle_samples"]}
            for g in t.details["gpus"]
        ]  # fmt: skip
    m = result.sections.get("model_updates")
    if m and m.details.get("models"):
        tables["weekly-review-model-updates"] = [
            {"model": x["name"], "source": x["source"], "ref": x["ref"], "status": x["status"],
             "pinned": x.get("pinned_digest"), "current": x.get("current_digest")}
            for x in m.details["models"]
        ]  # fmt: skip
    return tables


def slack_summary(result: WeeklyReviewResult) -> tuple[str, list[dict]]:
    """Plain-text fallback and Block Kit blocks: one line per chore plus the top findings."""
    title = f"Weekly LLM review: {result.status}"
    lines = []
    for k in SECTIONS:
        s = result.sections.get(k)
        if s:
            lines.append(f"{_ICON[s.verdict]} *{TITLES[k]}*: {s.summary}")
    e = result.sections.get("errors")
    top = [f for f in (e.details.get("findings") or []) if f["kind"] != "coverage"][:5] if e else []
    if top:
        lines.append("*Top findings:*")
        lines += [f"• {f['title']}" for f in top]
    text = redact(f"{title}: " + "; ".join(f"{TITLES[k]} {result.sections[k].verdict}" for k in SECTIONS
                                           if k in result.sections))  # fmt: skip
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": redact("\n".join(lines))[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Week {result.window_start:%Y-%m-%d} to "
                                          f"{result.window_end:%Y-%m-%d} (UTC); full report in Prefect artifacts."}]},
    ]  # fmt: skip
    return text, blocks


__all__ = [
    "SECTIONS", "SEVERITY", "SectionResult", "WeeklyReviewResult", "count_tables", "failed_section", "overall",
    "render_report", "section_from", "slack_summary", "CLASS_LABELS",
]  # fmt: skip
