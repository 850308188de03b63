"""What the runbook looks at before it decides anything: a probe long enough to judge the text,
a canary question, /metrics, /api/ps and the model's context size, GPUs, disks and logs.

Every reading is optional evidence: a failing /metrics or an unreadable log becomes a note, never
an exception, so one broken source cannot hide the symptoms the others show.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field

from llm_upkeep.clients import LLMError, OpenAIClient, client_for
from llm_upkeep.clients.errors import short_detail
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.disk import DiskUsage, measure_disk
from llm_upkeep.measure import measure_probe
from llm_upkeep.probe import ProbeResult
from llm_upkeep.restart import restarts_in_window
from llm_upkeep.runbook.gibberish import GibberishScore, check_canary, score_gibberish
from llm_upkeep.runbook.logs import LogTail, XidEvent, find_xids, read_log, recent
from llm_upkeep.servermetrics.dialects import names_of
from llm_upkeep.telemetry import GpuSnapshot

# Prometheus names of the same facts across servers (vLLM old/new, SGLang, TGI, llama.cpp server).
KV_CACHE_METRICS = names_of("kv_cache_usage")
RUNNING_METRICS = names_of("running")
WAITING_METRICS = names_of("waiting")


class Observation(BaseModel):
    """Everything seen about one endpoint in one runbook pass."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    endpoint: EndpointConfig = Field(description="The endpoint observed.")
    probe: ProbeResult = Field(description="Streaming probe with the runbook's longer answer.")
    text_score: GibberishScore | None = Field(default=None, description="Gibberish score of the probe text.")
    canary_text: str | None = Field(default=None, description="Answer to the canary question.")
    canary_ok: bool | None = Field(default=None, description="Canary answer contains the expected text.")
    canary_score: GibberishScore | None = Field(
        default=None, description="Gibberish score of the canary answer."
    )
    metrics: dict[str, float] | None = Field(default=None, description="/metrics, when the server has one.")
    context_length: int | None = Field(default=None, description="Context window the server reports.")
    server_logs: list[LogTail] = Field(default_factory=list, description="Tails of this endpoint's logs.")
    restarts_used: int = Field(default=0, description="Restarts spent in the last 24 h (ledger).")
    notes: list[str] = Field(default_factory=list, description="Sources that could not be read.")

    def metric(self, names: tuple[str, ...]) -> float | None:
        for n in names:
            if self.metrics and n in self.metrics:
                return self.metrics[n]
        return None

    @property
    def kv_cache_usage(self) -> float | None:
        return self.metric(KV_CACHE_METRICS)

    @property
    def running(self) -> float | None:
        return self.metric(RUNNING_METRICS)

    @property
    def waiting(self) -> float | None:
        return self.metric(WAITING_METRICS)

    @property
    def load_duration_s(self) -> float | None:
        return (self.probe.server or {}).get("load_duration_s")


class HostObservation(BaseModel):
    """Host-wide readings: GPUs, disks, kernel log."""

    gpus: GpuSnapshot = Field(description="NVML reading (skipped where there is no driver).")
    disks: list[DiskUsage] = Field(default_factory=list, description="Disk usage of the model/log paths.")
    kernel_logs: list[LogTail] = Field(default_factory=list, description="Kernel log tails.")
    xids: list[XidEvent] = Field(default_factory=list, description="Recent XID events.")

    @property
    def max_gpu_util(self) -> float | None:
        vals = [g.utilization_percent for g in self.gpus.gpus if g.utilization_percent is not None]
        return max(vals) if vals else None


def logs_for(cfg: Config, endpoint: EndpointConfig) -> list[LogTail]:
    rb = cfg.runbook
    out = []
    for src in rb.logs:
        if src.kind == "server" and (not src.endpoints or endpoint.name in src.endpoints):
            out.append(read_log(src, rb.log_tail_lines, rb.log_timeout_s, target=endpoint.name))
    return out


async def _context_length(
    endpoint: EndpointConfig, http: httpx.AsyncClient, probe: ProbeResult
) -> int | None:
    for m in probe.ps or []:
        if m.get("context_length"):
            return int(m["context_length"])
    client = client_for(endpoint, http)
    if isinstance(client, OpenAIClient):
        obj = await client.request_json("GET", "/v1/models", timeout_s=min(10.0, endpoint.timeout_s))
        for m in (obj or {}).get("data") or []:
            if isinstance(m, dict) and m.get("id") == endpoint.model and m.get("max_model_len"):
                return int(m["max_model_len"])
    return None


async def ask_canary(
    cfg: Config, endpoint: EndpointConfig, http: httpx.AsyncClient
) -> tuple[str | None, bool | None, str | None]:
    """(answer, passed, note). passed is None when the canary says nothing: the request failed, or
    a reasoning model spent every allowed token thinking (no answer is not a wrong answer)."""
    rb = cfg.runbook
    try:
        ans = await client_for(endpoint, http).complete(
            rb.canary_prompt, max_tokens=rb.canary_max_tokens, temperature=0.0
        )
    except LLMError as exc:
        return None, None, f"canary: {exc.kind}: {exc.detail}"
    text = (ans.get("text") or "").strip()
    if not text and (ans.get("reasoning") or "").strip():
        return text, None, f"canary inconclusive: still thinking after {rb.canary_max_tokens} tokens"
    return text, check_canary(text, rb.canary_expected), None


async def observe_endpoint(cfg: Config, endpoint: EndpointConfig, http: httpx.AsyncClient) -> Observation:
    """Probe, canary, metrics, context size and logs of one endpoint; never raises for the server's faults."""
    rb = cfg.runbook
    probe = await measure_probe(endpoint, prompt=cfg.health.probe_prompt, max_tokens=rb.probe_max_tokens)
    obs = Observation(endpoint=endpoint, probe=probe)
    obs.restarts_used = restarts_in_window(cfg.state_path, endpoint.name)
    if probe.ok:
        obs.text_score = score_gibberish(probe.text)
        if rb.canary_prompt and rb.canary_expected:
            obs.canary_text, obs.canary_ok, note = await ask_canary(cfg, endpoint, http)
            if note:
                obs.notes.append(note)
            if obs.canary_text:
                obs.canary_score = score_gibberish(obs.canary_text)
    if probe.error_kind not in ("connection_refused", "connect_timeout", "timeout"):
        client = client_for(endpoint, http)
        if isinstance(client, OpenAIClient):
            try:
                obs.metrics = await client.metrics()
            except LLMError as exc:
                obs.notes.append(f"/metrics: {exc.kind}: {exc.detail}")
        try:
            obs.context_length = await _context_length(endpoint, http, probe)
        except LLMError as exc:
            obs.notes.append(f"context length: {exc.kind}: {exc.detail}")
        except Exception as exc:  # evidence only
            obs.notes.append(short_detail(f"context length: {type(exc).__name__}: {exc}"))
    obs.server_logs = logs_for(cfg, endpoint)
    for t in obs.server_logs:
        if t.error:
            obs.notes.append(f"log {t.source}: {t.error}")
    return obs


def observe_host(cfg: Config, gpus: GpuSnapshot, *, now: float | None = None) -> HostObservation:
    """Disks (health.disk_paths) and kernel logs; GPUs are read by the caller (NVML, or a test's fake)."""
    rb = cfg.runbook
    host = HostObservation(gpus=gpus, disks=measure_disk(cfg.health.disk_paths))
    for src in rb.logs:
        if src.kind == "kernel":
            tail = read_log(src, rb.log_tail_lines, rb.log_timeout_s)
            host.kernel_logs.append(tail)
            host.xids += find_xids(recent(tail.lines, rb.log_window_minutes * 60, now), now)
    return host


__all__ = ["HostObservation", "LogTail", "Observation", "XidEvent", "observe_endpoint", "observe_host"]
