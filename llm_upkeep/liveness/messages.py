"""The two liveness messages: down (with the runbook's likely cause) and resolved (with how long)."""

from __future__ import annotations

from llm_upkeep.alerts import RUNBOOK_HINTS
from llm_upkeep.liveness.state import Transition, human_duration


def render(t: Transition) -> tuple[str, str, list[dict], str]:
    """(title, fallback text, Slack blocks, apprise kind)."""
    if t.kind == "down":
        kind = (t.error or "").split(":", 1)[0]
        hint = RUNBOOK_HINTS.get(f"endpoint_up:{kind}")
        title = f"LLM endpoint {t.endpoint} is DOWN"
        body = f"*{t.endpoint}* cannot serve (liveness, {t.at:%Y-%m-%d %H:%M} UTC): {t.error or 'no answer'}"
        if hint:
            body += f"\nlikely cause: {hint[0]}. Fix: {hint[1]}."
        level = "failure"
    else:
        title = f"RESOLVED: LLM endpoint {t.endpoint} serves again"
        body = (f"*{t.endpoint}* answered the liveness generation again at {t.at:%Y-%m-%d %H:%M} UTC "
                f"after {human_duration(t.outage_s)} down.")  # fmt: skip
        level = "success"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
    ]
    return title, f"{title}: {body}", blocks, level
