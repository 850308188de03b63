"""A /metrics reading -> daily-health checks: KV-cache usage, queue depth, running requests,
preemptions since the previous reading, token counters.

Why preemptions are judged as an increase: the counter only says how many since the server
started; what matters is how many since we last looked (a smaller value means it restarted).
"""

from __future__ import annotations

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.servermetrics.config import ServerMetricsConfig
from llm_upkeep.servermetrics.parse import ServerMetrics
from llm_upkeep.servermetrics.scrape import MetricsReading


def counter_increase(previous: float | None, current: float) -> float:
    """Prometheus' rule for one step: a counter that went down was reset, so all of it is new."""
    if previous is None:
        return 0.0
    return current - previous if current >= previous else current


def _src(m: ServerMetrics, fact: str) -> str:
    return f"{m.dialect} {m.sources.get(fact, '?')}"


def check_reading(
    r: MetricsReading, cfg: ServerMetricsConfig, previous: ServerMetrics | None = None
) -> list[CheckResult]:
    t = r.endpoint
    if r.status != "ok" or r.metrics is None:
        st = Status.SKIPPED if r.status == "absent" else Status.WARN
        return [CheckResult(check="server_metrics", target=t, status=st, detail=r.detail)]
    m = r.metrics
    if m.dialect is None:
        return [
            CheckResult(
                check="server_metrics", target=t, status=Status.SKIPPED,
                detail=f"/metrics has {len(m.samples)} series but none of vLLM, SGLang, TGI or llama.cpp",
            )
        ]  # fmt: skip
    out = [CheckResult(check="server_metrics", target=t, status=Status.OK, value=m.dialect, detail=r.detail)]
    if m.kv_cache_usage is not None:
        pct = round(100.0 * m.kv_cache_usage, 2)
        st = (
            Status.ALERT if pct >= cfg.kv_cache_alert_percent
            else Status.WARN if pct >= cfg.kv_cache_warn_percent else Status.OK
        )  # fmt: skip
        out.append(
            CheckResult(
                check="kv_cache_usage", target=t, status=st, value=pct, unit="%",
                threshold=cfg.kv_cache_alert_percent,
                detail=f"server's own KV-cache usage ({_src(m, 'kv_cache_usage')})"
                + ("; new requests wait or are preempted" if st != Status.OK else ""),
            )
        )  # fmt: skip
    if m.waiting is not None:
        st = (
            Status.ALERT if m.waiting >= cfg.waiting_alert
            else Status.WARN if m.waiting >= cfg.waiting_warn else Status.OK
        )  # fmt: skip
        out.append(
            CheckResult(
                check="requests_waiting", target=t, status=st, value=m.waiting, unit="requests",
                threshold=cfg.waiting_alert, detail=f"queue depth ({_src(m, 'waiting')})",
            )
        )  # fmt: skip
    if m.running is not None:
        out.append(
            CheckResult(
                check="requests_running", target=t, status=Status.OK, value=m.running, unit="requests",
                detail=f"being decoded ({_src(m, 'running')})",
            )
        )  # fmt: skip
    if m.preemptions is not None:
        prev = previous.preemptions if previous is not None else None
        inc = counter_increase(prev, m.preemptions)
        basis = (
            "first reading"
            if prev is None
            else f"since the previous reading (counter {prev:g} -> {m.preemptions:g})"
        )
        out.append(
            CheckResult(
                check="preemptions", target=t, value=inc, unit="preemptions", threshold=cfg.preemptions_warn,
                status=Status.WARN if inc > cfg.preemptions_warn else Status.OK,
                detail=f"{basis} ({_src(m, 'preemptions')}); preemption recomputes requests: KV cache too small "
                "for the load" if inc > cfg.preemptions_warn else f"{basis} ({_src(m, 'preemptions')})",
            )
        )  # fmt: skip
    if m.prompt_tokens is not None or m.generation_tokens is not None:
        out.append(
            CheckResult(
                check="server_tokens", target=t, status=Status.OK, value=m.generation_tokens, unit="tokens",
                detail=f"since the server started: {m.prompt_tokens or 0:.0f} prompt, "
                f"{m.generation_tokens or 0:.0f} generated ({m.dialect} counters)",
            )
        )  # fmt: skip
    return out
