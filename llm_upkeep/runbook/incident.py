"""Incidents: what the runbook saw and did, as a timeline (symptom, evidence, action, result),
rendered as a markdown report and as one Slack thread per incident.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from llm_upkeep.alerts import Delivery, post_to_slack
from llm_upkeep.config import AlertsConfig
from llm_upkeep.fleet_parts import HostPart
from llm_upkeep.redact import redact
from llm_upkeep.runbook.fixes import FixResult
from llm_upkeep.runbook.rows import Diagnosis, FixPlan

Outcome = Literal["open", "recovered", "escalated", "dry_run"]
EventKind = Literal["symptom", "evidence", "approval", "action", "verification", "result"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TimelineEvent(BaseModel):
    at: str = Field(default_factory=_now, description="When (UTC, ISO 8601).")
    kind: EventKind = Field(description="symptom, evidence, approval, action, verification or result.")
    text: str = Field(description="What happened (redacted).")


class Incident(BaseModel):
    """One symptom on one target, from detection to its outcome."""

    id: str = Field(description="Stable within a run: <symptom>:<target>.")
    diagnosis: Diagnosis = Field(description="Symptom, cause and evidence.")
    plans: list[FixPlan] = Field(default_factory=list, description="The fix, action by action.")
    results: list[FixResult] = Field(default_factory=list, description="What each action did.")
    verification: str | None = Field(default=None, description="Re-probe result after the fix.")
    recovered: bool | None = Field(default=None, description="Re-probe passed (None: not verified).")
    outcome: Outcome = Field(default="open", description="recovered, escalated or dry_run.")
    summary: str = Field(default="", description="One line: the outcome and why.")
    timeline: list[TimelineEvent] = Field(default_factory=list, description="Everything, in order.")
    slack_ts: str | None = Field(default=None, description="ts of the thread's first Slack message.")
    deliveries: list[Delivery] = Field(default_factory=list, description="Slack deliveries of this incident.")

    @property
    def symptom(self) -> str:
        return self.diagnosis.symptom

    @property
    def target(self) -> str:
        return self.diagnosis.target

    def add(self, kind: EventKind, text: str) -> None:
        self.timeline.append(TimelineEvent(kind=kind, text=redact(text)))

    def action_summary(self) -> str:
        return "; ".join(f"{r.action}: {r.status}" for r in self.results) or "none"

    def public(self) -> dict[str, Any]:
        """The JSON contract of `llm-upkeep run runbook --json`."""
        return {
            "target": self.target,
            "symptom": self.symptom,
            "cause": self.diagnosis.cause,
            "evidence": [redact(e) for e in self.diagnosis.evidence],
            "action": self.action_summary(),
            "result": redact(self.summary or self.outcome),
        }


def open_incident(d: Diagnosis, plans: list[FixPlan]) -> Incident:
    inc = Incident(id=f"{d.symptom}:{d.target}", diagnosis=d, plans=plans)
    inc.add("symptom", f"{d.symptom} on {d.target}: likely cause: {d.cause}")
    for e in d.evidence:
        inc.add("evidence", e)
    return inc


class RunbookResult(BaseModel):
    """The typed result of one runbook run."""

    flow: str = Field(default="runbook", description="Flow name, for JSON consumers.")
    status: str = Field(description="ok (no incident) | recovered | escalated | dry_run | failed")
    incidents: list[Incident] = Field(default_factory=list, description="Every incident, in order.")
    dry_run: bool = Field(default=False, description="Nothing was changed.")
    trigger: str = Field(
        default="manual", description="What started the run (manual, daily-health, automation)."
    )
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="Start (UTC).")
    duration_s: float = Field(default=0.0, description="Wall time of the run.")
    error: str | None = Field(default=None, description="Why the run failed, when it did.")
    hosts: list[HostPart] = Field(
        default_factory=list, description="Fleet: each host's part of this run (missing ones included)."
    )

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "status": self.status, "incidents": [i.public() for i in self.incidents]}


def overall_status(incidents: list[Incident], dry_run: bool) -> str:
    if not incidents:
        return "ok"
    if dry_run:
        return "dry_run"
    return "recovered" if all(i.outcome == "recovered" for i in incidents) else "escalated"


_ICON = {"recovered": "✅", "escalated": "🚨", "dry_run": "📝", "open": "⏳"}


def _cell(s: str) -> str:
    return redact(s).replace("|", "\\|").replace("\n", " ")


def render_incident_markdown(inc: Incident) -> str:
    d = inc.diagnosis
    lines = [
        f"### {_ICON[inc.outcome]} `{d.symptom}` on `{d.target}`: {inc.outcome.upper()}",
        "",
        f"**Likely cause:** {d.cause}  ",
        f"**Result:** {redact(inc.summary)}",
        "",
        "| time (UTC) | step | what |",
        "|---|---|---|",
    ]
    lines += [f"| {e.at[11:23]} | {e.kind} | {_cell(e.text)} |" for e in inc.timeline]
    for r in inc.results:
        if r.data.get("dropin"):
            lines += [
                "",
                f"Proposed `{r.data['dropin_path']}`:",
                "",
                "```ini",
                r.data["dropin"].rstrip(),
                "```",
            ]
        for src, log_lines in (r.data.get("logs") or {}).items():
            tail = log_lines[-40:]
            lines += ["", f"<details><summary>last {len(tail)} lines of {src}</summary>", "", "```"]
            lines += [redact(ln).replace("```", "'''") for ln in tail]
            lines += ["```", "</details>"]
    return "\n".join(lines) + "\n"


def render_report(result: RunbookResult) -> str:
    """The markdown incident report (Prefect artifact and the CLI's text output)."""
    head = f"# Runbook: {result.status.upper()}"
    lines = [
        head, "",
        f"Run at {result.started_at:%Y-%m-%d %H:%M:%S} UTC ({result.trigger}), {result.duration_s:.1f} s"
        + (", **dry run: nothing was changed**" if result.dry_run else "") + ".", "",
    ]  # fmt: skip
    if result.error:
        lines += [f"**The run failed:** {redact(result.error)}", ""]
    if not result.incidents:
        lines += ["No symptom of the runbook was found: no incident.", ""]
        return "\n".join(lines)
    lines += ["| target | symptom | cause | action | result |", "|---|---|---|---|---|"]
    for i in result.incidents:
        lines.append(
            f"| {_cell(i.target)} | {i.symptom} | {_cell(i.diagnosis.cause)} | {_cell(i.action_summary())} "
            f"| {_ICON[i.outcome]} {_cell(i.summary)} |"
        )
    lines.append("")
    for i in result.incidents:
        lines += [render_incident_markdown(i)]
    return "\n".join(lines)


# ---------------------------------------------------------------- Slack: one thread per incident


def _opening_text(inc: Incident) -> tuple[str, list[dict]]:
    d = inc.diagnosis
    title = f"Runbook: {d.symptom} on {d.target}"
    body = f"*Likely cause:* {d.cause}\n*Evidence:*\n" + "\n".join(f"• {e}" for e in d.evidence[:8])
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": redact(body)[:2900]}},
    ]
    return redact(f"{title}: {d.cause}"), blocks


def _final_text(inc: Incident) -> str:
    verdict = {"recovered": "RECOVERED", "escalated": "ESCALATED: needs a person", "dry_run": "DRY RUN"}.get(
        inc.outcome, inc.outcome
    )
    return redact(f"{_ICON[inc.outcome]} {verdict}: {inc.summary}")


def _action_text(r: FixResult) -> str:
    return redact(f"{r.action} ({r.target}): {r.status}: {r.detail}")[:2900]


def open_thread(cfg: AlertsConfig, inc: Incident) -> Delivery | None:
    """Bot token: post the incident's first message now, so people see it while the fix runs.
    A webhook cannot thread, so it waits for close_thread's single message."""
    if not cfg.enabled or not cfg.slack_token_env or cfg.slack_webhook_url_env:
        return None
    text, blocks = _opening_text(inc)
    d = post_to_slack(cfg, text, blocks)
    inc.deliveries.append(d)
    if d.status == "sent":
        inc.slack_ts = d.ts
    return d


def close_thread(cfg: AlertsConfig, inc: Incident) -> list[Delivery]:
    """Replies in the thread (each action, then the outcome), or one message per incident by webhook."""
    if not cfg.enabled:
        return []
    out: list[Delivery] = []
    if inc.slack_ts:
        for r in inc.results:
            out.append(post_to_slack(cfg, _action_text(r), thread_ts=inc.slack_ts))
        if inc.verification:
            out.append(
                post_to_slack(cfg, redact(f"verification: {inc.verification}"), thread_ts=inc.slack_ts)
            )
        out.append(post_to_slack(cfg, _final_text(inc), thread_ts=inc.slack_ts))
    else:
        text, blocks = _opening_text(inc)
        actions = "\n".join(f"• {_action_text(r)}" for r in inc.results) or "• no action"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": redact(f"*Actions:*\n{actions}")[:2900]}}
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _final_text(inc)[:2900]}})
        out.append(post_to_slack(cfg, f"{text}: {_final_text(inc)}", blocks))
    inc.deliveries += out
    return out
