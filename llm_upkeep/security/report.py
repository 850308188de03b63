"""The audit as markdown (Prefect artifact), a findings table, and the Slack message."""

from __future__ import annotations

from llm_upkeep.redact import redact
from llm_upkeep.security.audit import AuditResult
from llm_upkeep.security.findings import SEVERITY_RANK, Finding

ICON = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "low"}


def _cell(s: str) -> str:
    return redact(s).replace("|", "\\|").replace("\n", " ")


def findings_table(result: AuditResult) -> list[dict]:
    """Rows for create_table_artifact: one per finding."""
    return [
        {
            "severity": f.severity,
            "id": f.id,
            "title": redact(f.title),
            "evidence": redact("; ".join(f.evidence[:3]) + (" ..." if len(f.evidence) > 3 else "")),
            "fix": redact(f.fix),
        }
        for f in result.findings
    ]


def render_report(result: AuditResult) -> str:
    c = result.counts()
    lines = [
        f"# Security audit: {result.status.upper()}",
        "",
        f"Run {result.started_at:%Y-%m-%d %H:%M UTC}, {result.duration_s:.1f} s. "
        f"Findings: {c['critical']} critical, {c['high']} high, {c['medium']} medium, {c['low']} low.",
        "",
        "The audit only reads: socket tables, harmless HTTP probes, firewall listings, file modes, logs.",
        "",
    ]
    if result.findings:
        lines += ["| severity | finding | fix |", "|---|---|---|"]
        for f in result.findings:
            lines.append(f"| {ICON[f.severity]} | {_cell(f.title)} | {_cell(f.fix)} |")
        lines.append("")
        lines.append("## Evidence")
        for f in result.findings:
            lines += ["", f"### {ICON[f.severity]}: {redact(f.title)}", f"`{f.id}`", ""]
            lines += [f"- {redact(e)}" for e in f.evidence]
            lines += ["", f"**Fix:** {redact(f.fix)}"]
    else:
        lines.append("No findings.")
    lines += ["", "## Sections", "", "| section | status | notes |", "|---|---|---|"]
    for s in result.sections:
        lines.append(f"| {s.name} | {s.status} | {_cell('; '.join(s.notes)) or '-'} |")
    return "\n".join(lines) + "\n"


def slack_message(result: AuditResult, min_severity: str) -> tuple[str, list[dict]] | None:
    """(text, blocks) for the findings at or above min_severity; None when there are none."""
    hot: list[Finding] = [
        f for f in result.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[min_severity]
    ]
    if not hot:
        return None
    body = []
    for f in hot[:15]:
        ev = f.evidence[0] if f.evidence else ""
        body.append(f"*{ICON[f.severity]}* {f.title}\n    {ev}\n    Fix: {f.fix}")
    if len(hot) > 15:
        body.append(f"... and {len(hot) - 15} more in the report")
    title = f"Security audit: {len(hot)} finding(s) at {min_severity} or worse"
    text = redact(f"{title}: " + "; ".join(f.title for f in hot[:5]))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": redact("\n".join(body))[:2900]}},
    ]
    return text, blocks
