"""The liveness check itself: one-token generations, concurrently, with a short confirmation
re-try; then the state machine decides which messages this run owes.

Why a one-token generation and not the health route: /health, /v1/models or /api/tags answer
from the HTTP front end while the engine is wedged, the GPU is lost or the model cannot load;
only a generation proves the endpoint can serve. One token keeps it cheap (one short prefill and
one decode step; on Ollama it also keeps the model resident, which production wants anyway).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.liveness.config import LivenessConfig
from llm_upkeep.liveness.state import EndpointState, Transition, locked_state, observe
from llm_upkeep.measure import measure_probe
from llm_upkeep.probe import ProbeResult

# The project's one probe path (llm_upkeep.measure). Liveness asks "can it serve", not "how fast
# to the millisecond", and its flow's loop runs nothing else (no tasks), so the inline path is both
# accurate enough and cheapest: no probe process to start in every 5-minute run (about 0.3 s).
PROBE_PATH = "inline"


class LivenessProbe(BaseModel):
    endpoint: str = Field(description="Endpoint name.")
    ok: bool = Field(description="A token came back.")
    latency_s: float | None = Field(default=None, description="Send to end of the one-token answer.")
    error: str | None = Field(default=None, description="error kind: detail, when not ok.")
    attempts: int = Field(default=1, description="Attempts this run (confirmation re-tries included).")
    down_since: datetime | None = Field(default=None, description="Start of the current outage, if down.")


class LivenessResult(BaseModel):
    flow: str = Field(default="liveness", description="Flow name.")
    status: str = Field(description="ok when every endpoint served, degraded when one did not, skipped when off.")
    probes: list[LivenessProbe] = Field(default_factory=list, description="One per endpoint.")
    transitions: list[Transition] = Field(default_factory=list, description="Messages this run owes.")
    sent: list[str] = Field(default_factory=list, description="endpoint:kind of the messages delivered.")


def select(cfg: Config) -> list[EndpointConfig]:
    lv = cfg.liveness
    if lv.endpoints:
        return [cfg.endpoint(n) for n in lv.endpoints]
    return [e for e in cfg.endpoints if not e.staging]


def _describe(p: ProbeResult) -> str:
    return f"{p.error_kind or 'unknown'}: {p.error_detail or ''}".strip().rstrip(":")


async def probe_once(ep: EndpointConfig, lv: LivenessConfig) -> LivenessProbe:
    ep = ep.model_copy(update={"timeout_s": min(ep.timeout_s, lv.timeout_s)})
    attempts = 0
    while True:
        attempts += 1
        p = await measure_probe(ep, prompt=lv.prompt, max_tokens=lv.max_tokens, path=PROBE_PATH)
        served = p.ok and (p.output_tokens or 0) >= 1
        if served or attempts > lv.confirm_retries:
            break
        await asyncio.sleep(lv.confirm_delay_s)
    if served:
        return LivenessProbe(endpoint=ep.name, ok=True, latency_s=p.e2e_s, attempts=attempts)
    err = _describe(p) if not p.ok else "empty answer: no token generated"
    return LivenessProbe(endpoint=ep.name, ok=False, error=err, attempts=attempts)


async def check_liveness(cfg: Config, now: datetime | None = None) -> LivenessResult:
    """Probe every selected endpoint and fold the results into the state file."""
    eps = select(cfg)
    probes = list(await asyncio.gather(*[probe_once(e, cfg.liveness) for e in eps]))
    now = now or datetime.now(UTC)
    transitions: list[Transition] = []
    with locked_state(cfg.state_path) as states:
        for p in probes:
            st = states.setdefault(p.endpoint, EndpointState())
            t = observe(st, p.ok, p.error, now, cfg.liveness.down_after_runs)
            p.down_since = None if st.up else st.down_since
            if t is not None:
                t.endpoint = p.endpoint
                transitions.append(t)
    status = "ok" if all(p.ok for p in probes) else "degraded"
    return LivenessResult(status=status, probes=probes, transitions=transitions)


def deliver_transitions(cfg: Config, result: LivenessResult, now: datetime | None = None) -> list:
    """Send what this run owes; a delivered message is marked in the state, a failed one stays owed."""
    from llm_upkeep.liveness.messages import render
    from llm_upkeep.liveness.state import mark_delivered
    from llm_upkeep.notify import deliver

    out = []
    for t in result.transitions:
        title, text, blocks, kind = render(t)
        d = deliver(cfg.alerts, title, text, blocks, kind=kind)
        d.checks = [f"liveness:{t.endpoint}:{t.kind}"]
        out.append(d)
        if d.status in ("sent", "disabled"):  # disabled: nobody to tell, nothing owed
            with locked_state(cfg.state_path) as states:
                st = states.get(t.endpoint)
                if st is not None:
                    mark_delivered(st, t)
            if d.status == "sent":
                result.sent.append(f"{t.endpoint}:{t.kind}")
    return out


def liveness_metrics(result: LivenessResult):
    """liveness_up, latency and the current outage's start, per endpoint, for the Prometheus export."""
    from llm_upkeep.prom.metrics import MetricSet

    ms = MetricSet()
    for p in result.probes:
        ms.add("liveness_up", 1 if p.ok else 0, endpoint=p.endpoint)
        ms.add("liveness_latency", p.latency_s, endpoint=p.endpoint)
        ms.add("liveness_down_since", p.down_since.timestamp() if p.down_since else None, endpoint=p.endpoint)
    return ms


def events_markdown(result: LivenessResult, deliveries: list) -> str:
    """The artifact of a run that changed something (quiet runs publish nothing)."""
    from llm_upkeep.liveness.state import human_duration

    lines = ["# Liveness: state changed", "", "| endpoint | event | detail | delivery |", "|---|---|---|---|"]
    for t, d in zip(result.transitions, deliveries, strict=False):
        detail = t.error if t.kind == "down" else f"down for {human_duration(t.outage_s)}"
        err = f" ({d.error})" if d.error else ""
        lines.append(f"| {t.endpoint} | {t.kind} | {(detail or '').replace('|', '/')} | {d.status}{err} |")
    return "\n".join(lines) + "\n"
