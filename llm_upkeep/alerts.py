"""Slack alerts: Block Kit messages with the failing checks, the runbook's cause and fix,
suppression of repeats, and delivery failures that are reported, never dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import AlertsConfig
from llm_upkeep.configbase import resolve_secret
from llm_upkeep.redact import redact

log = logging.getLogger(__name__)

# The playbook's emergency runbook, keyed by check (and error kind where it matters).
RUNBOOK_HINTS: dict[str, tuple[str, str]] = {
    "ttft": ("Memory leak in the serving process", "Restart the serving process"),
    "e2e_latency": ("Context too long or server saturated", "Reduce max_tokens or add summarization"),
    "tokens_per_second": ("GPU saturated or context too long", "Reduce max_tokens or concurrent requests"),
    "endpoint_up:connection_refused": ("Process crashed", "Check logs, restart, increase the restart limit"),
    "endpoint_up:connect_timeout": (
        "Host or network down, or process wedged",
        "Check the host, then restart",
    ),
    "endpoint_up:timeout": ("Process hung (deadlock or stuck GPU)", "Collect logs, restart the process"),
    "endpoint_up:oom": ("KV cache overflow", "Reduce concurrent requests or the context window"),
    "endpoint_up:http_5xx": ("Server error", "Check the server log for the failing request"),
    "endpoint_up:malformed": ("Broken proxy or server bug", "Check the server and any reverse proxy"),
    "endpoint_up:truncated": ("Process crashed mid-response", "Check logs for a crash, restart"),
    "endpoint_up:auth": ("API key missing or wrong", "Check the api_key_env variable"),
    "gpu_memory": ("Memory leak in the serving process", "Restart the serving process"),
    "gpu_temperature": ("Cooling problem", "Check fans, airflow and datacenter temperature"),
    "gpu_ecc": ("Failing GPU memory", "Drain the GPU, check nvidia-smi -q, contact the vendor"),
    "gpu_remapped_rows": ("GPU memory row remapping", "Reset the GPU (pending) or replace it (failed)"),
    "disk_usage": ("Model store filling up", "Remove unused model versions or grow the disk"),
    "log_rotation": ("Logs could not be rotated", "Check free space and permissions of the log dirs"),
    "model_load": ("Model was cold-loaded", "Keep the model loaded (keep_alive) or pre-warm after restart"),
    "gpu_offload": ("Model partly offloaded to CPU", "Free GPU memory or use a smaller quantization"),
    # The servers' own /metrics (llm_upkeep/servermetrics/).
    "kv_cache_usage": ("KV cache nearly full (requests wait or are preempted)",
                       "Reduce concurrent requests or max context, or give the server more KV memory"),
    "requests_waiting": ("Server saturated: requests queue", "Reduce load or add capacity (another replica)"),
    "preemptions": ("KV cache too small for the load: requests are preempted and recomputed",
                    "Lower max-num-seqs / context, or raise gpu_memory_utilization"),
    "gpu_memory_trend": ("Memory leak in the serving process (its own GPU memory grows)", "Restart the serving process"),
    "server_metrics": ("/metrics could not be read", "Check the server's metrics endpoint and any proxy in front"),
}


def runbook_hint(check: CheckResult) -> tuple[str, str] | None:
    kind = check.data.get("error_kind") if check.data else None
    return RUNBOOK_HINTS.get(f"{check.check}:{kind}") or RUNBOOK_HINTS.get(check.check)


class Delivery(BaseModel):
    """What happened to one alert: sent, suppressed, not configured, or failed (with why)."""

    status: str = Field(description="sent | suppressed | disabled | failed")
    fingerprint: str = Field(default="", description="Identity of the alert for suppression.")
    channel: str | None = Field(default=None, description="Where it went: 'webhook' or the channel.")
    ts: str | None = Field(default=None, description="Slack message ts (threads hang on it).")
    error: str | None = Field(default=None, description="Why delivery failed (redacted).")
    checks: list[str] = Field(default_factory=list, description="check:target of the alerting checks.")


def _fmt_value(c: CheckResult) -> str:
    v = c.value
    if isinstance(v, float):
        v = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    unit = f" {c.unit}" if c.unit else ""
    thr = f" (threshold {c.threshold:g}{unit})" if isinstance(c.threshold, int | float) else ""
    return f"{v}{unit}{thr}" if v is not None else (c.detail or c.status)


def build_message(title: str, checks: list[CheckResult], *, context: str = "") -> tuple[str, list[dict]]:
    """Plain-text fallback and Block Kit blocks for a set of failing checks."""
    lines = []
    for c in checks:
        hint = runbook_hint(c)
        line = f"*{c.status.upper()}* `{c.check}` on *{c.target}*: {_fmt_value(c)}"
        if c.detail and c.value is not None:
            line += f" ({c.detail})"
        if hint:
            line += f"\n    likely cause: {hint[0]}. Fix: {hint[1]}."
        lines.append(line)
    text = redact(f"{title}: " + "; ".join(f"{c.check} on {c.target} {c.status}" for c in checks))
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": redact("\n".join(lines))[:2900]}},
    ]
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": redact(context)[:2000]}]})
    return text, blocks


def fingerprint(title: str, checks: list[CheckResult]) -> str:
    """Same failing checks with the same statuses = same alert, whatever the measured values."""
    key = json.dumps([title, sorted(f"{c.check}|{c.target}|{c.status}" for c in checks)])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Suppressor:
    """Remembers when each alert fingerprint was last sent (a JSON file, locked)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "alerts-sent.json"

    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path.with_suffix(".lock"), "a+")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def _read(self) -> dict[str, float]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def recently_sent(self, fp: str, window_s: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        last = self._read().get(fp)
        return last is not None and now - last < window_s

    def mark_sent(self, fp: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._locked():
            data = {k: v for k, v in self._read().items() if now - v < 7 * 86400}
            data[fp] = now
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities: a server's error body quoted in an alert
    must not post <!channel> or a disguised <url|link> (our own messages use neither)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_blocks(node: object) -> object:
    """Every mrkdwn text of a Block Kit tree escaped (plain_text is never parsed by Slack)."""
    if isinstance(node, list):
        return [_escape_blocks(x) for x in node]
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            return {**node, "text": slack_escape(node["text"])}
        return {k: _escape_blocks(v) for k, v in node.items()}
    return node


def post_to_slack(
    cfg: AlertsConfig, text: str, blocks: list[dict] | None = None, *, thread_ts: str | None = None
) -> Delivery:
    """One Slack API call with its own timeout; failure is returned, not raised."""
    if not cfg.slack_enabled:
        return Delivery(status="disabled")
    text, blocks = slack_escape(text), _escape_blocks(blocks) if blocks else blocks  # type: ignore[assignment]
    try:
        if cfg.slack_webhook_url_env:
            from slack_sdk.webhook import WebhookClient

            url = resolve_secret(cfg.slack_webhook_url_env, key="alerts.slack_webhook_url_env")
            client = WebhookClient(url, timeout=int(max(1, cfg.timeout_s)))
            resp = client.send(text=text, blocks=blocks)
            if resp.status_code != 200:
                return Delivery(
                    status="failed", channel="webhook", error=redact(f"HTTP {resp.status_code}: {resp.body}")
                )
            return Delivery(status="sent", channel="webhook")
        from slack_sdk import WebClient

        token = resolve_secret(cfg.slack_token_env, key="alerts.slack_token_env")
        if not cfg.slack_channel:
            return Delivery(status="failed", error="alerts.slack_channel is required with slack_token_env")
        kwargs = {"token": token, "timeout": int(max(1, cfg.timeout_s))}
        if cfg.slack_base_url:
            kwargs["base_url"] = (
                cfg.slack_base_url if cfg.slack_base_url.endswith("/") else cfg.slack_base_url + "/"
            )
        client = WebClient(**kwargs)
        resp = client.chat_postMessage(
            channel=cfg.slack_channel, text=text, blocks=blocks, thread_ts=thread_ts
        )
        return Delivery(status="sent", channel=cfg.slack_channel, ts=resp.get("ts"))
    except Exception as exc:  # any transport or API error is a failed delivery, reported upward
        msg = getattr(getattr(exc, "response", None), "data", None)
        detail = f"{type(exc).__name__}: {msg.get('error') if isinstance(msg, dict) else exc}"
        log.warning("Slack delivery failed: %s", redact(detail))
        return Delivery(status="failed", error=redact(detail)[:500])


def send_alert(
    cfg: AlertsConfig,
    state_dir: Path,
    title: str,
    checks: list[CheckResult],
    *,
    suppress_minutes: float = 60.0,
    context: str = "",
    now: float | None = None,
) -> Delivery:
    """Alert once per distinct set of failing checks within the suppression window."""
    min_sev = {"warn": (Status.WARN, Status.ALERT, Status.ERROR), "alert": (Status.ALERT, Status.ERROR)}
    failing = [c for c in checks if c.status in min_sev[cfg.min_status]]
    names = [f"{c.check}:{c.target}" for c in failing]
    if not failing:
        return Delivery(status="suppressed", checks=[], error=None, fingerprint="")
    fp = fingerprint(title, failing)
    if not cfg.enabled:
        return Delivery(status="disabled", fingerprint=fp, checks=names)
    sup = Suppressor(state_dir)
    if suppress_minutes > 0 and sup.recently_sent(fp, suppress_minutes * 60, now):
        return Delivery(status="suppressed", fingerprint=fp, checks=names)
    text, blocks = build_message(title, failing, context=context)
    from llm_upkeep.notify import deliver  # Slack and every Apprise URL

    d = deliver(cfg, title, text, blocks)
    d.fingerprint, d.checks = fp, names
    if d.status == "sent":
        sup.mark_sent(fp, now)
    return d
