"""Every configured notification target at once: Slack (llm_upkeep.alerts) and Apprise URLs
(e-mail, generic webhooks, Teams, Telegram, ntfy... anything Apprise speaks).

Apprise URLs carry credentials, so the config names environment variables that hold them
(alerts.apprise_urls_env), never the URLs. Each URL is notified on its own, so one dead target
is reported by name (its scheme) while the others still get the message. Each call has its own
timeouts (Apprise's cto/rto URL parameters, from alerts.timeout_s, unless the URL sets them).
"""

from __future__ import annotations

import html
import logging
import re

from llm_upkeep.alerts import Delivery, post_to_slack
from llm_upkeep.config import AlertsConfig
from llm_upkeep.configbase import resolve_secret
from llm_upkeep.redact import redact

log = logging.getLogger(__name__)


def apprise_urls(cfg: AlertsConfig) -> list[str]:
    """The Apprise URLs the named variables hold (each may hold several, space or comma separated)."""
    urls: list[str] = []
    for i, env in enumerate(cfg.apprise_urls_env):
        value = resolve_secret(env, key=f"alerts.apprise_urls_env[{i}]")
        for u in re.split(r"[\s,]+", value or ""):
            if u:
                from llm_upkeep.redact import register_secret

                register_secret(u)
                urls.append(u)
    return urls


def _with_timeouts(url: str, timeout_s: float) -> str:
    """Add Apprise's connect/read timeouts unless the URL sets its own."""
    extra = [f"{k}={timeout_s:g}" for k in ("cto", "rto") if not re.search(rf"[?&]{k}=", url)]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def blocks_to_text(text: str, blocks: list[dict] | None) -> str:
    """A plain body from Slack blocks (sections and context), else the fallback text."""
    parts: list[str] = []
    for b in blocks or []:
        if b.get("type") == "section" and isinstance(b.get("text"), dict):
            parts.append(b["text"].get("text", ""))
        elif b.get("type") == "context":
            parts += [e.get("text", "") for e in b.get("elements") or [] if isinstance(e, dict)]
    body = "\n\n".join(p for p in parts if p) or text
    return html.unescape(body.replace("*", "").replace("`", ""))


def send_apprise(cfg: AlertsConfig, title: str, body: str, *, kind: str = "failure") -> list[Delivery]:
    """One Delivery per configured Apprise URL; failures are returned, never raised."""
    if not cfg.apprise_urls_env:
        return []
    try:
        import apprise
    except ImportError:  # apprise comes with Prefect; say so if an install lacks it
        return [Delivery(status="failed", channel="apprise", error="the apprise package is not installed")]
    try:
        urls = apprise_urls(cfg)
    except Exception as exc:  # a missing variable names itself, never a value
        return [Delivery(status="failed", channel="apprise", error=redact(str(exc))[:300])]
    ntype = {"failure": apprise.NotifyType.FAILURE, "success": apprise.NotifyType.SUCCESS,
             "info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING}.get(kind, apprise.NotifyType.INFO)
    out: list[Delivery] = []
    for url in urls:
        scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
        a = apprise.Apprise()
        if not a.add(_with_timeouts(url, cfg.timeout_s)):
            out.append(Delivery(status="failed", channel=f"apprise:{scheme}",
                                error="not a valid Apprise URL (see https://github.com/caronc/apprise/wiki)"))
            continue
        try:
            ok = a.notify(title=redact(title)[:250], body=redact(body)[:8000], notify_type=ntype)
        except Exception as exc:  # a plugin bug must not take the flow down
            ok, err = False, redact(f"{type(exc).__name__}: {exc}")[:300]
        else:
            err = None if ok else "delivery failed (see the apprise log lines)"
        out.append(Delivery(status="sent" if ok else "failed", channel=f"apprise:{scheme}", error=err))
    return out  # fmt: skip


def deliver(cfg: AlertsConfig, title: str, text: str, blocks: list[dict] | None = None, *,
            kind: str = "failure") -> Delivery:  # fmt: skip
    """Slack (when set up) and every Apprise URL; one Delivery that says where it went.

    status is 'sent' when at least one target got it (the others' errors are in error),
    'failed' when none did, 'disabled' when nothing is configured."""
    parts: list[Delivery] = []
    if cfg.slack_enabled:
        parts.append(post_to_slack(cfg, text, blocks))
    parts += send_apprise(cfg, title, blocks_to_text(text, blocks), kind=kind)
    if not parts:
        return Delivery(status="disabled")
    if len(parts) == 1:
        return parts[0]
    sent = [p for p in parts if p.status == "sent"]
    errors = [f"{p.channel or 'slack'}: {p.error}" for p in parts if p.status == "failed"]
    ts = next((p.ts for p in parts if p.ts), None)
    return Delivery(status="sent" if sent else "failed", channel=", ".join(p.channel or "slack" for p in sent) or None,
                    ts=ts, error="; ".join(errors)[:500] or None)  # fmt: skip
