"""The playbook's emergency runbook as code: one Row per symptom.

A row has a detector (what it reads from the observations), a diagnosis (the likely cause and
the evidence it saw), a fix plan (actions, each with a dry-run description, risky ones marked),
and a verification (what the re-probe must show for the fix to count). The table in
docs/runbook.md is render_rows_table()'s output (a test checks it), so the document cannot drift.

| playbook symptom     | row                | fix                                                  |
|----------------------|--------------------|------------------------------------------------------|
| TTFT > 10 s          | slow_ttft          | restart (guarded)                                    |
| GPU 100 %, low TPS   | saturated_low_tps  | reduce context / concurrency (hook, proposal)        |
| OOM errors           | oom                | reduce concurrency / context (hook, proposal)        |
| Gibberish output     | gibberish          | re-pull + verify checksum (risky)                    |
| Connection refused   | connection_refused | logs, restart, propose a higher restart limit        |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from llm_upkeep.alerts import RUNBOOK_HINTS
from llm_upkeep.config import Config
from llm_upkeep.restart import render_command, restarts_in_window
from llm_upkeep.runbook.logs import recent
from llm_upkeep.runbook.observe import HostObservation, Observation

Action = Literal[
    "collect_logs", "restart", "repull_model", "verify_model", "set_setting", "propose_restart_limit",
    "warm_model", "reload_model", "list_models", "escalate",
]  # fmt: skip
Verify = Literal[
    "reprobe_ok", "reprobe_ttft", "reprobe_tps", "reprobe_text", "reprobe_load", "ps_vram", "disk", "none"
]


class Diagnosis(BaseModel):
    """A symptom seen on a target, its likely cause, and the evidence for it."""

    symptom: str = Field(description="Row name, e.g. slow_ttft.")
    target: str = Field(description="Endpoint name, disk path or gpu:<device>.")
    endpoint: str | None = Field(default=None, description="Endpoint the fixes act on (None: host-wide).")
    cause: str = Field(description="Likely cause, in the playbook's words.")
    evidence: list[str] = Field(default_factory=list, description="What was measured or read.")
    data: dict[str, Any] = Field(default_factory=dict, description="Numbers the fix plan needs.")


class FixPlan(BaseModel):
    """One action of a fix; description says what it would do (the dry-run text)."""

    id: str = Field(description="Unique in the run: <action>:<target>[:<setting>].")
    action: Action = Field(description="What kind of action.")
    target: str = Field(description="Endpoint name or host target it acts on.")
    description: str = Field(description="What it does, concretely (command, setting, model).")
    risky: bool = Field(default=False, description="Needs approval unless runbook.allow_risky_fixes.")
    corrective: bool = Field(default=False, description="A fix whose success the re-probe can verify.")
    params: dict[str, Any] = Field(default_factory=dict, description="Arguments of the action.")


@dataclass(frozen=True)
class Row:
    symptom: str
    playbook: tuple[str, str, str]  # symptom as an operator sees it, likely cause, fix
    scope: Literal["endpoint", "host"]
    verify: Verify
    detect: Callable[..., list[Diagnosis]]
    plan: Callable[[Config, Diagnosis, Observation | None], list[FixPlan]]
    explained_by: tuple[str, ...] = ()  # symptoms on the same target that make this one redundant


# ---------------------------------------------------------------- plan helpers


def _restart_plan(cfg: Config, d: Diagnosis, obs: Observation | None, why: str) -> FixPlan:
    ep = d.endpoint or d.target
    model = obs.endpoint.model if obs else next((e.model for e in cfg.endpoints if e.name == ep), "")
    cmd = render_command(cfg.restart, ep, model)
    used = obs.restarts_used if obs else restarts_in_window(cfg.state_path, ep)
    over = used >= cfg.restart.max_per_day
    shown = " ".join(cmd) if cmd else "(restart.command is not configured)"
    desc = f"restart {ep}: `{shown}` ({used}/{cfg.restart.max_per_day} restarts used in 24 h)"
    if over:
        desc = f"restart {ep} BEYOND the daily budget ({used}/{cfg.restart.max_per_day} used): `{shown}`"
    return FixPlan(
        id=f"restart:{ep}", action="restart", target=ep, description=desc, risky=over, corrective=True,
        params={"reason": why, "beyond_budget": over, "model": model},
    )  # fmt: skip


def _logs_plan(cfg: Config, d: Diagnosis) -> FixPlan:
    n = cfg.runbook.log_tail_lines
    srcs = [
        s.name
        for s in cfg.runbook.logs
        if s.kind == "server" and (not s.endpoints or d.endpoint in s.endpoints)
    ]
    where = ", ".join(srcs) if srcs else "no server log configured (runbook.logs)"
    return FixPlan(id=f"collect_logs:{d.target}", action="collect_logs", target=d.target,
                   description=f"attach the last {n} lines of: {where}")  # fmt: skip


def _escalate(d: Diagnosis, what: str) -> FixPlan:
    return FixPlan(
        id=f"escalate:{d.target}:{d.symptom}", action="escalate", target=d.target, description=what
    )


def _setting_plans(
    cfg: Config, d: Diagnosis, obs: Observation | None, which: tuple[str, ...]
) -> list[FixPlan]:
    """Reduced context and/or concurrency, through the hook; a proposal unless apply_settings."""
    rb = cfg.runbook
    if obs is None:
        return []
    api = obs.endpoint.api
    runs = bool(rb.setting_hook) and rb.apply_settings
    out = []
    for kind in which:
        if kind == "context":
            name = rb.context_setting.get(api)
            current = obs.context_length
            if not name or not current:
                continue
            value = max(rb.min_context_length, int(current * rb.reduce_factor))
            if value >= current:
                continue
            basis = f"server reports {current}"
        else:
            name = rb.concurrency_setting.get(api)
            if not name:
                continue
            running = int(obs.running or 0)
            current = max(running, rb.assumed_concurrency)
            value = max(rb.min_concurrency, int(current * rb.reduce_factor))
            if value >= current:
                continue
            basis = (
                f"{running} requests running" if running > rb.assumed_concurrency else f"assumed {current}"
            )
        cmd = [a.replace("{target}", d.endpoint or "").replace("{model}", obs.endpoint.model)
               .replace("{api}", api).replace("{setting}", name).replace("{value}", str(value))
               for a in rb.setting_hook]  # fmt: skip
        how = f"`{' '.join(cmd)}`" if cmd else "no runbook.setting_hook configured"
        mode = "run" if runs else "propose"
        out.append(FixPlan(
            id=f"set_setting:{d.endpoint}:{name}", action="set_setting", target=d.endpoint or d.target,
            description=f"{mode}: set {name}={value} on {d.endpoint} ({basis}); {how}",
            risky=runs, corrective=runs,
            params={"setting": name, "value": value, "current": current, "command": cmd, "run": runs},
        ))  # fmt: skip
    return out


# ---------------------------------------------------------------- detectors


def _log_lines(obs: Observation, cls: str, cfg: Config, limit: int = 5) -> list[str]:
    lines: list[str] = []
    for t in obs.server_logs:
        lines += [f"{t.source}: {ln}" for ln in recent(t.matching(cls), cfg.runbook.log_window_minutes * 60)]
    return lines[-limit:]


def detect_connection_refused(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p = obs.probe
    if p.ok or p.error_kind != "connection_refused":
        return []
    ev = [f"probe: {p.error_kind}: {p.error_detail}", f"restarts in the last 24 h: {obs.restarts_used}"]
    ev += _log_lines(obs, "crash_restart", cfg) + _log_lines(obs, "oom", cfg, 3)
    return [Diagnosis(symptom="connection_refused", target=p.endpoint, endpoint=p.endpoint,
                      cause="Process crashed (nothing listens on the port)", evidence=ev)]  # fmt: skip


def plan_connection_refused(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    rb = cfg.runbook
    unit = rb.systemd_unit.replace("{target}", d.endpoint or "")
    return [
        _logs_plan(cfg, d),
        _restart_plan(cfg, d, obs, "connection refused (runbook: process crashed)"),
        FixPlan(
            id=f"propose_restart_limit:{d.target}",
            action="propose_restart_limit",
            target=d.target,
            description=f"propose a systemd drop-in for {unit}: StartLimitBurst={rb.restart_limit_burst} in "
            f"{rb.restart_limit_interval_s} s, Restart=always (rendered, never written to /etc)",
            params={"unit": unit},
        ),
    ]


def detect_hung(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p = obs.probe
    if p.ok or p.error_kind != "timeout":
        return []
    return [Diagnosis(symptom="hung", target=p.endpoint, endpoint=p.endpoint,
                      cause="Process hung (deadlock or stuck GPU): it accepts connections but does not answer",
                      evidence=[f"probe: timeout: {p.error_detail}"] + _log_lines(obs, "crash_restart", cfg))]  # fmt: skip


def plan_hung(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    return [_logs_plan(cfg, d), _restart_plan(cfg, d, obs, "probe timed out (runbook: process hung)")]


def detect_oom(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p = obs.probe
    lines = _log_lines(obs, "oom", cfg)
    if p.error_kind != "oom" and not lines:
        return []
    ev = [f"probe: oom: {p.error_detail}"] if p.error_kind == "oom" else []
    ev += lines
    if obs.kv_cache_usage is not None:
        ev.append(f"KV-cache usage {obs.kv_cache_usage:.0%}")
    if obs.context_length:
        ev.append(f"context window {obs.context_length} tokens")
    return [Diagnosis(symptom="oom", target=p.endpoint, endpoint=p.endpoint,
                      cause="KV cache overflow: too many concurrent requests or too long a context", evidence=ev)]  # fmt: skip


def plan_oom(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    plans = [_logs_plan(cfg, d), *_setting_plans(cfg, d, obs, ("concurrency", "context"))]
    if not any(p.corrective for p in plans):
        plans.append(_escalate(d, "apply the proposed lower concurrency or context window, then restart"))
    return plans


def detect_server_error(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p = obs.probe
    if p.ok or p.error_kind in ("connection_refused", "timeout", "oom"):
        return []
    cause, fix = RUNBOOK_HINTS.get(f"endpoint_up:{p.error_kind}", ("Server error", "Check the server log"))
    return [Diagnosis(symptom="server_error", target=p.endpoint, endpoint=p.endpoint, cause=cause,
                      evidence=[f"probe: {p.error_kind}: {p.error_detail}"] + _log_lines(obs, "crash_restart", cfg),
                      data={"error_kind": p.error_kind, "hint": fix})]  # fmt: skip


def plan_server_error(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    plans = [_logs_plan(cfg, d)]
    if d.data.get("error_kind") == "truncated":  # the answer was cut: the process died mid-stream
        plans.append(_restart_plan(cfg, d, obs, "answer cut mid-stream (runbook: process crashed)"))
    else:
        plans.append(_escalate(d, f"{d.data.get('hint', 'check the server log')} (no safe automatic fix)"))
    return plans


def detect_slow_ttft(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p = obs.probe
    if not p.ok or p.ttft_s is None:
        return []
    load = obs.load_duration_s or 0.0
    effective = p.ttft_s - load  # a cold load is its own row, not a leak
    if effective <= cfg.health.ttft_alert_s:
        return []
    ev = [
        f"TTFT {p.ttft_s:.2f} s > {cfg.health.ttft_alert_s:g} s"
        + (f" ({load:.2f} s of it loading)" if load else "")
    ]
    if obs.endpoint.host == "local":
        for g in host.gpus.gpus:
            if g.memory_percent is not None:
                ev.append(f"GPU {g.index} memory {g.memory_percent:.0f}%")
    if obs.kv_cache_usage is not None:
        ev.append(f"KV-cache usage {obs.kv_cache_usage:.0%}")
    return [Diagnosis(symptom="slow_ttft", target=p.endpoint, endpoint=p.endpoint,
                      cause="Memory leak in the serving process", evidence=ev, data={"ttft_s": p.ttft_s})]  # fmt: skip


def plan_slow_ttft(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    return [_restart_plan(cfg, d, obs, f"TTFT {d.data['ttft_s']:.2f} s (runbook: memory leak)")]


def detect_saturated_low_tps(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    p, rb = obs.probe, cfg.runbook
    tps = p.decode_tokens_per_s
    if not p.ok or tps is None or tps >= rb.low_tokens_per_s:
        return []
    saturation = []
    util = host.max_gpu_util if obs.endpoint.host == "local" else None
    if util is not None and util >= rb.saturated_gpu_percent:
        saturation.append(f"GPU utilization {util:.0f}% >= {rb.saturated_gpu_percent:g}%")
    kv = obs.kv_cache_usage
    if kv is not None and kv >= rb.kv_cache_saturated:
        saturation.append(f"KV-cache usage {kv:.0%} >= {rb.kv_cache_saturated:.0%}")
    if obs.waiting:
        saturation.append(f"{obs.waiting:.0f} requests waiting")
    if not saturation:
        return []  # slow without saturation is not this row's cause
    ev = [f"decode {tps:.1f} tokens/s < {rb.low_tokens_per_s:g}", *saturation]
    if obs.running is not None:
        ev.append(f"{obs.running:.0f} requests running")
    if obs.context_length:
        ev.append(f"context window {obs.context_length} tokens")
    return [Diagnosis(symptom="saturated_low_tps", target=p.endpoint, endpoint=p.endpoint,
                      cause="Context too long (and too many concurrent requests) for the GPU", evidence=ev,
                      data={"tps": tps})]  # fmt: skip


def plan_saturated_low_tps(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    plans = _setting_plans(cfg, d, obs, ("context", "concurrency"))
    if not any(p.corrective for p in plans):
        plans.append(_escalate(d, "reduce max_tokens / add summarization on the client side, or apply the "
                                  "proposed settings"))  # fmt: skip
    return plans


def _is_gibberish(cfg: Config, obs: Observation) -> bool:
    t = cfg.runbook.gibberish_threshold
    return bool(
        (obs.text_score and obs.text_score.score >= t) or (obs.canary_score and obs.canary_score.score >= t)
    )


def detect_gibberish(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    if not obs.probe.ok or not _is_gibberish(cfg, obs):
        return []
    ev = []
    if obs.text_score:
        ev.append(f"probe answer: {obs.text_score.explain()}")
        ev.append(f"probe text: {obs.probe.text[:160]!r}")
    if obs.canary_text is not None:
        ev.append(f"canary answer {'matches' if obs.canary_ok else 'does not match'} "
                  f"{cfg.runbook.canary_expected}: {obs.canary_text[:120]!r}")  # fmt: skip
    return [Diagnosis(symptom="gibberish", target=obs.endpoint.name, endpoint=obs.endpoint.name,
                      cause="Corrupted model file", evidence=ev)]  # fmt: skip


def _verify_plan(d: Diagnosis, obs: Observation | None) -> FixPlan:
    model = obs.endpoint.model if obs else ""
    return FixPlan(id=f"verify_model:{d.target}", action="verify_model", target=d.target,
                   description=f"verify {model}'s checksum against the pinned digest (model lifecycle)",
                   params={"model": model})  # fmt: skip


def plan_gibberish(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    if obs is not None and obs.endpoint.api == "ollama":
        return [FixPlan(
            id=f"repull_model:{d.target}", action="repull_model", target=d.target, risky=True, corrective=True,
            description=f"re-download {obs.endpoint.model} (Ollama /api/pull), unload the damaged copy, verify "
                        "its checksum", params={"model": obs.endpoint.model},
        )]  # fmt: skip
    return [
        _verify_plan(d, obs),
        _escalate(d, "re-download the model files from the source and verify their checksums, then restart"),
    ]


def detect_canary_failed(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    if not obs.probe.ok or obs.canary_ok is not False or _is_gibberish(cfg, obs):
        return []
    return [Diagnosis(symptom="canary_failed", target=obs.endpoint.name, endpoint=obs.endpoint.name,
                      cause="Wrong answer to a known question: wrong, swapped or damaged model",
                      evidence=[f"canary {cfg.runbook.canary_prompt!r} expected {cfg.runbook.canary_expected}, "
                                f"got {(obs.canary_text or '')[:120]!r}"])]  # fmt: skip


def plan_canary_failed(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    return [
        _verify_plan(d, obs),
        _escalate(d, "check which model file is loaded; re-pull it if the checksum differs"),
    ]


def detect_cold_load(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    load = obs.load_duration_s
    if not obs.probe.ok or load is None or load <= cfg.runbook.cold_load_s:
        return []
    return [Diagnosis(symptom="cold_load", target=obs.endpoint.name, endpoint=obs.endpoint.name,
                      cause="Model was not resident: evicted, keep_alive expired, or the server restarted",
                      evidence=[f"load_duration {load:.2f} s > {cfg.runbook.cold_load_s:g} s",
                                f"TTFT {obs.probe.ttft_s or 0:.2f} s"])]  # fmt: skip


def plan_cold_load(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    model = obs.endpoint.model if obs else ""
    return [FixPlan(id=f"warm_model:{d.target}", action="warm_model", target=d.target, corrective=True,
                    description=f"load {model} now and keep it resident (keep_alive={cfg.runbook.keep_alive})",
                    params={"model": model, "keep_alive": cfg.runbook.keep_alive})]  # fmt: skip


def detect_cpu_offload(cfg: Config, obs: Observation, host: HostObservation) -> list[Diagnosis]:
    if not obs.probe.ok:
        return []
    gpus_here = obs.endpoint.host != "local" or bool(host.gpus.gpus)
    for m in obs.probe.ps or []:
        size, vram = m.get("size") or 0, m.get("size_vram")
        if vram == 0 and not gpus_here:
            continue  # a CPU-only host runs every model on the CPU by design
        if size and vram is not None and vram < size:
            ev = [f"{m.get('name', obs.endpoint.model)}: {vram / size:.0%} in VRAM ({vram}/{size} bytes)"]
            if obs.endpoint.host == "local":
                for g in host.gpus.gpus:
                    if g.memory_percent is not None:
                        procs = ", ".join(f"{p['name'] or '?'}[{p['pid']}]" for p in g.processes)
                        ev.append(
                            f"GPU {g.index} memory {g.memory_percent:.0f}%"
                            + (f"; processes: {procs}" if procs else "")
                        )
            return [Diagnosis(symptom="cpu_offload", target=obs.endpoint.name, endpoint=obs.endpoint.name,
                              cause="Model partly offloaded to the CPU: not enough free GPU memory when it loaded",
                              evidence=ev, data={"vram_fraction": vram / size})]  # fmt: skip
    return []


def plan_cpu_offload(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    model = obs.endpoint.model if obs else ""
    plans = [FixPlan(id=f"reload_model:{d.target}", action="reload_model", target=d.target, corrective=True,
                     description=f"unload {model} and load it again, so it is placed with the GPU memory free now",
                     params={"model": model, "keep_alive": cfg.runbook.keep_alive})]  # fmt: skip
    plans += [
        p for p in _setting_plans(cfg, d, obs, ("context",)) if not p.params["run"]
    ]  # fallback proposal
    return plans


def detect_disk_full(cfg: Config, host: HostObservation) -> list[Diagnosis]:
    limit = cfg.runbook.disk_alert_percent or cfg.health.disk_alert_percent
    out = []
    for u in host.disks:
        if u.percent is not None and u.percent > limit:
            free = (u.free_bytes or 0) / 1024**3
            out.append(Diagnosis(symptom="disk_full", target=u.path, cause="Model store (or logs) filling up",
                                 evidence=[f"{u.path}: {u.percent:.1f}% used > {limit:g}%, {free:.1f} GiB free"],
                                 data={"percent": u.percent, "limit": limit}))  # fmt: skip
    return out


def plan_disk_full(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    eps = [e.name for e in cfg.endpoints if e.api == "ollama" and e.host == "local"]
    plans = [FixPlan(id=f"list_models:{d.target}", action="list_models", target=d.target,
                     description=f"list the installed models and their sizes ({', '.join(eps) or 'no local Ollama'})",
                     params={"endpoints": eps})] if eps else []  # fmt: skip
    plans.append(_escalate(d, "remove unused model versions (keep the pinned and the previous one) or grow the "
                              "disk; old logs can be rotated"))  # fmt: skip
    return plans


def detect_gpu_xid(cfg: Config, host: HostObservation) -> list[Diagnosis]:
    by_dev: dict[str, list] = {}
    for x in host.xids:
        by_dev.setdefault(x.device, []).append(x)
    out = []
    for dev, xs in by_dev.items():
        worst = next((x for x in xs if x.severity == "alert"), xs[-1])
        codes = sorted({x.code for x in xs})
        ev = [f"XID {x.code} ({x.name}): {x.line[:200]}" for x in xs[-5:]]
        ev.append(f"NVIDIA's advice for XID {worst.code}: {worst.action}")
        out.append(Diagnosis(symptom="gpu_xid", target=f"gpu:{dev}",
                             cause=f"GPU error XID {', '.join(map(str, codes))}: {worst.name}", evidence=ev,
                             data={"codes": codes, "severity": worst.severity, "action": worst.action}))  # fmt: skip
    return out


def plan_gpu_xid(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    plans = [FixPlan(id=f"collect_logs:{d.target}", action="collect_logs", target=d.target,
                     description=f"attach the last {cfg.runbook.log_tail_lines} kernel log lines",
                     params={"kernel": True})]  # fmt: skip
    if d.data.get("severity") == "alert":
        plans.append(_escalate(d, f"the GPU itself needs attention: {d.data.get('action')}"))
        return plans
    for e in cfg.endpoints:  # an application-level XID: restarting the serving process clears it
        if e.host == "local" and not e.staging:
            sub = Diagnosis(symptom="gpu_xid", target=e.name, endpoint=e.name, cause=d.cause)
            plans.append(_restart_plan(cfg, sub, None, f"{d.cause} (application-level XID)"))
    return plans


ROWS: list[Row] = [
    Row("connection_refused", ("Connection refused", "Process crashed", "Check logs, restart, propose a higher restart limit"),
        "endpoint", "reprobe_ok", detect_connection_refused, plan_connection_refused),
    Row("hung", ("Probe times out", "Process hung (deadlock, stuck GPU)", "Collect logs, restart"),
        "endpoint", "reprobe_ok", detect_hung, plan_hung),
    Row("oom", ("OOM errors", "KV cache overflow", "Fewer concurrent requests, shorter context (hook; a proposal by default)"),
        "endpoint", "reprobe_ok", detect_oom, plan_oom),
    Row("server_error", ("HTTP 5xx / broken answers", "Server error or crash mid-response", "Check logs; restart if it crashed"),
        "endpoint", "reprobe_ok", detect_server_error, plan_server_error, explained_by=("oom",)),
    Row("slow_ttft", ("TTFT > 10s", "Memory leak", "Restart serving process"),
        "endpoint", "reprobe_ttft", detect_slow_ttft, plan_slow_ttft, explained_by=("cpu_offload",)),
    Row("saturated_low_tps", ("GPU at 100%, low TPS", "Context too long", "Shorter context, fewer concurrent requests (hook; a proposal by default)"),
        "endpoint", "reprobe_tps", detect_saturated_low_tps, plan_saturated_low_tps, explained_by=("cpu_offload",)),
    Row("gibberish", ("Gibberish output", "Corrupted model file", "Re-download (Ollama pull), verify checksum; risky"),
        "endpoint", "reprobe_text", detect_gibberish, plan_gibberish),
    Row("canary_failed", ("Wrong answer to a known question", "Wrong or damaged model", "Verify checksum, escalate"),
        "endpoint", "reprobe_text", detect_canary_failed, plan_canary_failed),
    Row("cold_load", ("High load_duration", "Model not resident", "Pre-load it with a long keep_alive"),
        "endpoint", "reprobe_load", detect_cold_load, plan_cold_load),
    Row("cpu_offload", ("size_vram < size", "Model offloaded to CPU", "Reload it; else reduce context"),
        "endpoint", "ps_vram", detect_cpu_offload, plan_cpu_offload),
    Row("disk_full", ("Disk nearly full", "Model store filling up", "Remove unused models or grow the disk"),
        "host", "disk", detect_disk_full, plan_disk_full),
    Row("gpu_xid", ("NVRM: Xid in the kernel log", "GPU or driver error", "Restart (application XID) or drain/reset the GPU"),
        "host", "reprobe_ok", detect_gpu_xid, plan_gpu_xid),
]  # fmt: skip

ROW_BY_SYMPTOM: dict[str, Row] = {r.symptom: r for r in ROWS}
SYMPTOMS: tuple[str, ...] = tuple(ROW_BY_SYMPTOM)


def diagnose(cfg: Config, observations: list[Observation], host: HostObservation) -> list[Diagnosis]:
    """Every row's detector over every observation; a symptom another one on the same target
    explains (slow TTFT of an offloaded model) is dropped."""
    found: list[Diagnosis] = []
    for row in ROWS:
        if row.scope == "host":
            found += row.detect(cfg, host)
        else:
            for obs in observations:
                found += row.detect(cfg, obs, host)
    present = {(d.target, d.symptom) for d in found}
    return [
        d for d in found
        if not any((d.target, other) in present for other in ROW_BY_SYMPTOM[d.symptom].explained_by)
    ]  # fmt: skip


def plan_fixes(cfg: Config, d: Diagnosis, obs: Observation | None) -> list[FixPlan]:
    return ROW_BY_SYMPTOM[d.symptom].plan(cfg, d, obs)


def render_rows_table() -> str:
    """The runbook's rows as the markdown table docs/runbook.md shows."""
    lines = [
        "| symptom | what the operator sees | likely cause | fix | verified by |",
        "|---|---|---|---|---|",
    ]
    for r in ROWS:
        seen, cause, fix = r.playbook
        lines.append(f"| `{r.symptom}` | {seen} | {cause} | {fix} | `{r.verify}` |")
    return "\n".join(lines) + "\n"
