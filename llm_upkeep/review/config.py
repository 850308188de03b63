"""The [review] section: what the weekly review reads, and the thresholds that make a finding."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import HttpUrl, PositiveFloat, Section, require_unique

LogKind = Literal["ollama", "vllm", "llamacpp", "kernel", "jsonl", "journal"]
MessageFormat = Literal["ollama", "vllm", "llamacpp", "kernel", "jsonl"]


class LogSource(Section):
    name: str = Field(min_length=1, description="Name of this log source, shown in the report.")
    kind: LogKind = Field(
        description="Log format: 'ollama' (server log with [GIN] request lines), 'vllm', 'llamacpp', "
        "'kernel' (syslog/journal kernel lines with NVRM: Xid), 'jsonl' (one request per line), or "
        "'journal' (the systemd journal of `unit`, read with journalctl; Ollama's Linux install logs there)."
    )
    paths: list[str] = Field(
        default_factory=list,
        description="Files or globs (rotated and .gz files included), e.g. ['/var/log/ollama/server*.log*'] "
        "(not used by kind 'journal').",
    )
    request_markers: list[str] | None = Field(
        default=None,
        description="Literal strings that mark one request line each, for request volume "
        "(default per kind; [] turns volume off for this source).",
    )
    unit: str | None = Field(
        default=None, description="kind 'journal': the systemd unit, e.g. 'ollama' (journalctl -u ollama)."
    )
    format: MessageFormat = Field(
        default="ollama", description="kind 'journal': the format of the unit's messages (the server's kind)."
    )
    journal_dir: str | None = Field(
        default=None, description="kind 'journal': read this journal directory (journalctl --directory) "
        "instead of the system journal, e.g. a copy from another host.",
    )  # fmt: skip
    journal_files: list[str] = Field(
        default_factory=list, description="kind 'journal': read these journal files (journalctl --file)."
    )
    cursor_file: str | None = Field(
        default=None,
        description="kind 'journal': where the journal cursor is kept so each entry is read once across runs "
        "(unset: each run reads its whole window).",
    )
    timeout_s: PositiveFloat = Field(default=120.0, description="kind 'journal': time budget of journalctl.")

    @field_validator("paths")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("empty path")
        return v

    @model_validator(mode="after")
    def _needs(self) -> LogSource:
        if self.kind == "journal" and not self.unit:
            raise ValueError("a 'journal' source needs unit (e.g. unit = \"ollama\")")
        if self.kind != "journal" and not self.paths:
            raise ValueError(f"a {self.kind!r} source needs paths")
        return self


class PinnedModel(Section):
    name: str = Field(
        min_length=1,
        description="Ollama model name (e.g. 'llama3:8b', 'namespace/model:tag') or Hugging Face repo id.",
    )
    source: Literal["ollama", "hf"] = Field(
        description="Registry to ask: 'ollama' or 'hf' (Hugging Face-style)."
    )
    ref: str | None = Field(
        default=None,
        description="Tag (Ollama) or branch/tag (HF) whose movement is checked; default: the tag in name "
        "('latest' when none) for Ollama, 'main' for HF.",
    )
    digest: str | None = Field(
        default=None,
        description="The pinned version: Ollama manifest digest (sha256:..., or the 12-hex ID `ollama list` "
        "shows) or HF commit sha. Ollama: read from the local manifest when unset and ollama_models_dir is set.",
    )


class ReviewConfig(Section):
    sources: list[LogSource] = Field(default_factory=list, description="Logs the weekly error review reads.")
    log_timezone: str = Field(
        default="UTC",
        description="Zone of log timestamps that carry no offset (IANA name, e.g. 'Europe/Berlin').",
    )
    top_n: int = Field(default=10, ge=1, le=100, description="Repeated failures listed in the report.")
    repeat_min_count: int = Field(
        default=10, ge=2, description="A normalized failure message seen this often in the week is a finding."
    )
    burst_min_count: int = Field(
        default=3, ge=2, description="This many failures of one class within burst_window_minutes is a burst."
    )
    burst_window_minutes: PositiveFloat = Field(
        default=10.0, description="Window of burst detection, minutes."
    )
    crash_alert_count: int = Field(
        default=3, ge=1, description="Crash/restart lines in the week from which the finding is an alert."
    )
    evidence_lines: int = Field(default=3, ge=1, le=20, description="Evidence lines kept per finding.")
    volume_z_threshold: PositiveFloat = Field(
        default=4.0, description="Robust z-score (median/MAD) of an hour's request count that is an anomaly."
    )
    volume_min_delta: int = Field(
        default=20,
        ge=0,
        description="An anomalous hour must also differ from the median by this many requests.",
    )
    volume_baseline: Literal["hour_of_day", "hour_of_week"] = Field(
        default="hour_of_day",
        description="Baseline of an hour: the same hour of day on every day of the previous weeks, or the "
        "same weekday and hour only.",
    )
    baseline_weeks: int = Field(
        default=4, ge=1, le=26, description="Previous weeks read for the volume baseline."
    )
    volume_min_baseline_hours: int = Field(
        default=5, ge=2, description="Fewer baseline hours than this: the volume check is skipped."
    )
    chunk_bytes: int = Field(
        default=1 << 20,
        ge=4096,
        le=64 << 20,
        description="Read size of the log scanner (memory stays ~3x this).",
    )
    max_distinct_messages: int = Field(
        default=5000, ge=10, description="Distinct normalized messages tracked; more are counted as 'other'."
    )
    temperature_threshold_c: float = Field(
        default=85.0, description="Sustained heat above this (°C) means cooling trouble (playbook: 85 °C)."
    )
    temperature_margin_c: float = Field(
        default=5.0,
        ge=0,
        description="Also flag stretches above the GPU's own slowdown threshold minus this.",
    )
    sustained_minutes: PositiveFloat = Field(
        default=120.0, description="A hot stretch at least this long (minutes) is sustained heat."
    )
    max_sample_gap_minutes: PositiveFloat = Field(
        default=90.0,
        description="Samples further apart than this break a stretch (missing data is not heat).",
    )
    ollama_registry_url: HttpUrl = Field(
        default="https://registry.ollama.ai", description="Ollama registry base URL (manifest API /v2/...)."
    )
    hf_endpoint: HttpUrl = Field(
        default="https://huggingface.co", description="Hugging Face-style hub URL (API /api/models/...)."
    )
    hf_token_env: str | None = Field(
        default=None, description="Env var holding a Hugging Face token (private repos)."
    )
    discover_candidates: bool = Field(
        default=True,
        description="List newer tags / quantizations of each pinned family (Ollama tag lists, Hugging Face "
        "sibling repos) as candidates to evaluate; never pulled.",
    )
    max_candidates: int = Field(default=10, ge=1, le=100, description="Candidates listed per pinned family.")
    registry_timeout_s: PositiveFloat = Field(
        default=15.0, description="Total timeout of one registry request, s."
    )
    registry_connect_timeout_s: PositiveFloat = Field(
        default=5.0, description="Registry TCP connect timeout, s."
    )
    ollama_models_dir: str | None = Field(
        default=None,
        description="Ollama model store (e.g. /usr/share/ollama/.ollama/models): read-only source of pinned "
        "digests for Ollama models without one.",
    )
    pinned: list[PinnedModel] = Field(
        default_factory=list,
        description="Pinned models checked for newer versions (never updated). The Ollama tags pinned in "
        "models.lock are checked too, unless listed here.",
    )
    slack_summary: bool = Field(
        default=True, description="Post the weekly summary to Slack (when alerts are set up)."
    )

    @field_validator("log_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: list[LogSource]) -> list[LogSource]:
        return require_unique(v, lambda s: s.name, "duplicate source name")
