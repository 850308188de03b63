"""The [runbook] section: thresholds of the emergency runbook's detectors, where its logs are,
and how far its fixes may go on their own (risky ones wait for a person unless allowed)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_upkeep.configbase import PositiveFloat, Section


class RunbookLogSource(Section):
    name: str = Field(min_length=1, description="Name of this log, shown in incidents.")
    kind: Literal["server", "kernel"] = Field(
        description="'server': an LLM server's log (crash, OOM lines); 'kernel': kernel log read for GPU XID errors."
    )
    path: str | None = Field(
        default=None, description="Log file to tail (plain text), e.g. /var/log/ollama.log."
    )
    command: list[str] = Field(
        default_factory=list,
        description="Or a command (argument list, no shell) whose output is the log, e.g. "
        "['journalctl', '-u', 'ollama', '-n', '{lines}', '--no-pager']; {lines} and {target} are replaced.",
    )
    unit: str | None = Field(
        default=None,
        description="Or a systemd unit whose journal is the log (journalctl -u UNIT -o json), e.g. 'ollama'.",
    )
    journal_dir: str | None = Field(
        default=None, description="With unit: read this journal directory instead of the system journal."
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Server logs: endpoint names this log belongs to (empty: every endpoint).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RunbookLogSource:
        if sum(map(bool, (self.path, self.command, self.unit))) != 1:
            raise ValueError("give exactly one of path, command or unit")
        return self


def _default_concurrency_settings() -> dict[str, str]:
    return {"ollama": "OLLAMA_NUM_PARALLEL", "openai": "--max-num-seqs"}


def _default_context_settings() -> dict[str, str]:
    return {"ollama": "OLLAMA_CONTEXT_LENGTH", "openai": "--max-model-len"}


class RunbookConfig(Section):
    allow_risky_fixes: bool = Field(
        default=False,
        description="Run risky fixes (restart beyond the daily budget, model re-pull, settings change) without "
        "waiting for approval in the Prefect UI.",
    )
    approval_timeout_s: int = Field(
        default=3600, ge=1, description="How long a run waits for approval of risky fixes before escalating."
    )
    approval_poll_s: int = Field(
        default=10, ge=1, description="How often a paused run checks for the approval."
    )
    verify_timeout_s: PositiveFloat = Field(
        default=120.0, description="How long to re-probe after a fix before declaring it did not work."
    )
    verify_interval_s: PositiveFloat = Field(
        default=2.0, description="Seconds between two verification probes."
    )
    probe_max_tokens: int = Field(
        default=48,
        gt=0,
        le=4096,
        description="Tokens the runbook's probe asks for (enough text to judge gibberish).",
    )
    saturated_gpu_percent: float = Field(
        default=95.0, gt=0, le=100, description="GPU utilization (%) from which the GPU counts as saturated."
    )
    kv_cache_saturated: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="KV-cache usage (0..1, from /metrics) from which the server counts as saturated.",
    )
    low_tokens_per_s: PositiveFloat = Field(
        default=5.0, description="Decode rate (tokens/s) below which a saturated server is 'low throughput'."
    )
    cold_load_s: PositiveFloat = Field(
        default=5.0, description="Ollama load_duration (s) above which the probe paid for a cold model load."
    )
    disk_alert_percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Disk fullness (%) that opens an incident (default: health.disk_alert_percent).",
    )
    gibberish_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Gibberish score (0..1) from which an answer is gibberish."
    )
    canary_prompt: str = Field(
        default="What is the capital of France? Answer with one word.",
        description="A question with a known answer, asked at temperature 0 (empty: no canary).",
    )
    canary_expected: list[str] = Field(
        default_factory=lambda: ["Paris"],
        description="The canary passes when the answer contains one of these (case and accents ignored).",
    )
    canary_max_tokens: int = Field(default=24, gt=0, le=1024, description="Tokens the canary answer may use.")
    logs: list[RunbookLogSource] = Field(
        default_factory=list,
        description="Server logs (crash, OOM evidence) and kernel logs (GPU XID errors).",
    )
    log_tail_lines: int = Field(default=200, ge=1, le=100000, description="Last N lines read from each log.")
    log_window_minutes: PositiveFloat = Field(
        default=1440.0, description="Dated log lines older than this are ignored by the detectors."
    )
    log_timeout_s: PositiveFloat = Field(default=10.0, description="Timeout of a log command, in seconds.")
    setting_hook: list[str] = Field(
        default_factory=list,
        description="Command (argument list, no shell) that changes one server setting and restarts the server, "
        "e.g. ['/usr/local/bin/llm-set', '{target}', '{setting}', '{value}']; {target} {model} {api} {setting} "
        "{value} are replaced. Empty: settings changes are only proposed.",
    )
    apply_settings: bool = Field(
        default=False,
        description="Run the setting hook (after approval unless allow_risky_fixes); false: propose the change only.",
    )
    hook_timeout_s: PositiveFloat = Field(
        default=120.0, description="Timeout of the setting hook, in seconds."
    )
    concurrency_setting: dict[str, str] = Field(
        default_factory=_default_concurrency_settings,
        description="Setting that limits concurrent requests, per API dialect (llama.cpp server: '--parallel').",
    )
    context_setting: dict[str, str] = Field(
        default_factory=_default_context_settings,
        description="Setting that limits the context window, per API dialect (llama.cpp server: '--ctx-size').",
    )
    reduce_factor: float = Field(
        default=0.5, gt=0, lt=1, description="A reduced setting is its current value times this."
    )
    min_context_length: int = Field(
        default=2048, ge=1, description="Never propose a context window below this."
    )
    min_concurrency: int = Field(
        default=1, ge=1, description="Never propose fewer concurrent requests than this."
    )
    assumed_concurrency: int = Field(
        default=4,
        ge=1,
        description="Concurrency assumed when the server does not report it (Ollama does not).",
    )
    keep_alive: str = Field(
        default="24h",
        description="keep_alive sent when the runbook pre-loads a cold Ollama model (e.g. '24h', '-1').",
    )
    systemd_unit: str = Field(
        default="ollama.service",
        description="Unit whose restart limit is proposed for crash loops ({target} is replaced).",
    )
    restart_limit_burst: int = Field(default=10, ge=1, description="Proposed StartLimitBurst for the unit.")
    restart_limit_interval_s: int = Field(
        default=600, ge=1, description="Proposed StartLimitIntervalSec for the unit."
    )
    pull_timeout_s: PositiveFloat = Field(
        default=3600.0, description="Timeout of a model re-pull, in seconds."
    )
