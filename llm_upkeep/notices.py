"""Messages for what used to pass silently: a model evaluation waiting for a person, a scheduled
restart that failed, and a failing check that cleared ("resolved").

The cleared checks are found by remembering, per flow and scope, which checks were failing at the
end of the last run (a small locked JSON file in state_dir).
"""

from __future__ import annotations

from pathlib import Path

from llm_upkeep.checks import CheckResult
from llm_upkeep.jsonstate import locked_json

FAILING_FILE = "failing-checks.json"


def _blocks(title: str, body: str) -> list[dict]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
    ]


def approval_waiting(candidate: str, endpoint: str, link: str | None, timeout_s: float) -> tuple[str, str, list]:
    title = f"Model {candidate} waits for approval on {endpoint}"
    where = f"Approve or reject it in the Prefect UI: {link}" if link else "Approve or reject it in the Prefect UI."
    body = (f"evaluate-model benchmarked *{candidate}* on staging for *{endpoint}* and is paused for a "
            f"person's decision. {where}\nNo answer within {timeout_s / 3600:g} h counts as rejected.")  # fmt: skip
    return title, f"{title}: {where}", _blocks(title, body)


def restart_failed(actions) -> tuple[str, str, list] | None:
    """None when every scheduled restart went well (or was a dry run)."""
    bad = [a for a in actions if a.decision in ("failed", "over_budget") or a.recovered is False]
    if not bad:
        return None
    title = f"Scheduled restart failed on {', '.join(a.target for a in bad)}"
    lines = []
    for a in bad:
        what = "did not recover after the restart" if a.recovered is False else f"{a.decision}"
        if a.returncode not in (None, 0):
            what += f" (exit {a.returncode})"
        lines.append(f"*{a.target}*: {what} ({a.reason}; {a.restarts_in_window}/{a.budget} restarts used today)")
    body = "\n".join(lines) + "\nRunbook: check the server log, then restart by hand."
    return title, f"{title}: " + "; ".join(lines), _blocks(title, body)


def cleared_checks(state_dir: str | Path, scope: str, checks: list[CheckResult]) -> list[CheckResult]:
    """The checks that were failing at the end of the previous run of `scope` and are ok now.

    A check that is absent now (not measured, skipped) is neither cleared nor forgotten."""
    now_failing = {f"{c.check}|{c.target}": c.status for c in checks if c.failing}
    now_ok = {f"{c.check}|{c.target}": c for c in checks if c.status == "ok"}
    with locked_json(Path(state_dir) / FAILING_FILE) as data:
        before = data.get(scope, {})
        cleared = [now_ok[k] for k in before if k in now_ok]
        kept = {k: v for k, v in before.items() if k not in now_ok}
        kept.update({k: str(v) for k, v in now_failing.items()})
        data[scope] = kept
    return cleared


def resolved(cleared: list[CheckResult], flow: str) -> tuple[str, str, list]:
    title = f"RESOLVED ({flow}): " + ", ".join(f"{c.check} on {c.target}" for c in cleared)[:120]
    lines = []
    for c in cleared:
        val = "" if c.value is None else f": {c.value}{(' ' + c.unit) if c.unit else ''}"
        lines.append(f"*{c.check}* on *{c.target}* is ok again{val}")
    return title, f"{title}", _blocks(title, "\n".join(lines))
