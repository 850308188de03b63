"""Configuration: one TOML file, validated by pydantic, errors that name the key and the file.

Secrets never live in the file: it names environment variables (``*_env`` keys) and
:func:`resolve_secret` reads them, registering each value with the redactor.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.configbase import (
    ConfigError,
    HttpUrl,
    PositiveFloat,
    Section,
    register_config_secrets,
    require_unique,
    resolve_secret,
)
from llm_upkeep.control import ControlConfig
from llm_upkeep.cost.config import CostConfig
from llm_upkeep.fleet_config import FleetConfig
from llm_upkeep.liveness.config import LivenessConfig
from llm_upkeep.models.config import ModelsConfig
from llm_upkeep.prom.config import PrometheusConfig
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.runbook.config import RunbookConfig
from llm_upkeep.security.config import SecurityConfig
from llm_upkeep.servermetrics.config import ServerMetricsConfig
from llm_upkeep.trends.config import TrendsConfig

ENV_CONFIG = "LLM_UPKEEP_CONFIG"
DEFAULT_CONFIG_NAME = "llm-upkeep.toml"


class EndpointConfig(Section):
    name: str = Field(min_length=1, description="Unique name of the endpoint; used as the check target.")
    api: Literal["ollama", "openai"] = Field(
        description="API dialect: 'ollama' (native /api/*) or 'openai' (vLLM, llama.cpp server, any /v1/*)."
    )
    url: HttpUrl = Field(description="Base URL, e.g. http://127.0.0.1:11434 (no /v1 suffix).")
    model: str = Field(min_length=1, description="Model name or tag the probes and benchmarks request.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key (sent as Bearer)."
    )
    timeout_s: PositiveFloat = Field(
        default=30.0, description="Total time budget for one request to this endpoint, in seconds."
    )
    connect_timeout_s: PositiveFloat = Field(default=5.0, description="TCP connect timeout, in seconds.")
    read_timeout_s: PositiveFloat = Field(
        default=15.0, description="Longest silence tolerated between two bytes of a response, in seconds."
    )
    host: str = Field(
        default="local",
        description="Fleet host this server runs on; host-local steps (restart, logs) run there.",
    )
    staging: bool = Field(
        default=False, description="True for a staging endpoint used to evaluate candidates."
    )

    def api_key(self) -> str | None:
        return resolve_secret(self.api_key_env, key=f"endpoints[{self.name}].api_key_env", required=False)


class HealthConfig(Section):
    ttft_alert_s: PositiveFloat = Field(
        default=10.0, description="Alert when time to first token exceeds this."
    )
    ttft_warn_s: PositiveFloat | None = Field(
        default=None, description="Warn when TTFT exceeds this (default: half of ttft_alert_s)."
    )
    e2e_alert_s: PositiveFloat | None = Field(
        default=None, description="Alert when end-to-end latency of the probe exceeds this (off by default)."
    )
    min_tokens_per_s: float | None = Field(
        default=None, description="Warn when decode tokens/s falls below this (off by default)."
    )
    gpu_memory_alert_percent: float = Field(
        default=95.0, gt=0, le=100, description="Alert when a GPU's used memory exceeds this percent."
    )
    gpu_temperature_margin_c: float = Field(
        default=5.0,
        ge=0,
        description="Alert when a GPU is within this many °C of its own slowdown threshold.",
    )
    gpu_temperature_alert_c: float = Field(
        default=85.0, description="Alert at this temperature when the device reports no slowdown threshold."
    )
    disk_alert_percent: float = Field(
        default=85.0,
        gt=0,
        le=100,
        description="Alert when a disk path's filesystem is fuller than this percent.",
    )
    disk_paths: list[str] = Field(
        default_factory=list, description="Paths whose filesystems are checked (e.g. the model store)."
    )
    probe_prompt: str = Field(default="test", description="Prompt sent by the health probe.")
    probe_max_tokens: int = Field(default=16, gt=0, le=4096, description="Max tokens the probe asks for.")
    probe_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a probe after a connection error or HTTP 5xx (not 4xx)."
    )
    probe_retry_delay_s: float = Field(default=2.0, ge=0, description="Delay before the first probe retry; doubles each retry.")
    alert_suppress_minutes: float = Field(
        default=60.0, ge=0, description="An identical alert is not re-sent within this many minutes."
    )


class LogsConfig(Section):
    dirs: list[str] = Field(default_factory=list, description="Directories whose logs are rotated.")
    pattern: str = Field(default="*.jsonl", description="Glob of files to rotate, matched in each dir.")
    compress_after_days: float = Field(
        default=30, ge=0, description="Gzip files last modified this long ago."
    )
    delete_after_days: float | None = Field(
        default=None, ge=0, description="Delete compressed files older than this (off when unset)."
    )
    recursive: bool = Field(default=False, description="Also descend into sub-directories.")
    quiet_seconds: float = Field(
        default=300, ge=0, description="A file modified within this many seconds is treated as still written."
    )
    min_free_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Stop compressing when less than this is free on the disk.",
    )


class AlertsConfig(Section):
    slack_webhook_url_env: str | None = Field(
        default=None, description="Env var holding a Slack incoming-webhook URL."
    )
    slack_token_env: str | None = Field(
        default=None, description="Env var holding a Slack bot token (xoxb-...)."
    )
    slack_channel: str | None = Field(
        default=None, description="Channel for chat.postMessage with a bot token."
    )
    slack_base_url: str | None = Field(
        default=None,
        description="Slack API base URL (for a self-hosted or test receiver), e.g. http://127.0.0.1:9000/api/.",
    )
    timeout_s: PositiveFloat = Field(default=10.0, description="Timeout of one Slack API call, in seconds.")
    min_status: Literal["warn", "alert"] = Field(
        default="alert", description="Lowest check status that is sent to Slack."
    )
    apprise_urls_env: list[str] = Field(
        default_factory=list,
        description="Env vars each holding one or more Apprise URLs (mailto://, json://, ntfy://...): every "
        "alert also goes there.",
    )

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_webhook_url_env or self.slack_token_env)

    @property
    def enabled(self) -> bool:
        return bool(self.slack_webhook_url_env or self.slack_token_env or self.apprise_urls_env)


class RestartConfig(Section):
    command: list[str] = Field(
        default_factory=list,
        description="Command (argument list, no shell) that restarts the serving process, "
        "e.g. ['systemctl', 'restart', 'ollama'].",
    )
    max_per_day: int = Field(default=2, ge=0, description="Most automatic restarts in any 24 hours.")
    dry_run: bool = Field(default=True, description="Report what would run instead of running it.")
    timeout_s: PositiveFloat = Field(default=60.0, description="Timeout of the restart command, in seconds.")
    recover_timeout_s: PositiveFloat = Field(
        default=120.0, description="How long to re-probe after a restart before declaring it failed."
    )
    on_ttft: bool = Field(default=True, description="Restart when TTFT crosses ttft_alert_s (runbook: leak).")
    on_gpu_memory: bool = Field(default=True, description="Restart when GPU memory crosses its alert level.")


class GpuConfig(Section):
    enabled: bool = Field(default=True, description="Read GPU telemetry through NVML.")
    approved_driver: str | None = Field(default=None, description="Driver version approved for production.")
    approved_cuda: str | None = Field(
        default=None, description="CUDA driver version approved for production."
    )


def default_state_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "llm-upkeep")


class Config(Section):
    state_dir: str = Field(
        default_factory=default_state_dir,
        description="Where history, baselines and state live (default: the user's data dir).",
    )
    endpoints: list[EndpointConfig] = Field(default_factory=list, description="LLM servers to watch.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Daily health thresholds.")
    logs: LogsConfig = Field(default_factory=LogsConfig, description="Log rotation.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Slack alerting.")
    restart: RestartConfig = Field(default_factory=RestartConfig, description="Guarded restart.")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPU telemetry.")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="Weekly review chores.")
    benchmark: BenchmarkConfig = Field(
        default_factory=BenchmarkConfig, description="Weekly benchmark: load profile, suite, thresholds."
    )
    backup: BackupConfig = Field(default_factory=BackupConfig, description="Monthly backup to S3.")
    security: SecurityConfig = Field(default_factory=SecurityConfig, description="Monthly security audit.")
    cost: CostConfig = Field(default_factory=CostConfig, description="Monthly cost review.")
    fleet: FleetConfig = Field(default_factory=FleetConfig, description="Fleet: hosts, pool, queues.")
    models: ModelsConfig = Field(
        default_factory=ModelsConfig, description="Model pins, verification, promotion and rollback."
    )
    runbook: RunbookConfig = Field(
        default_factory=RunbookConfig, description="Emergency runbook: detectors, fixes, approvals."
    )
    server_metrics: ServerMetricsConfig = Field(
        default_factory=ServerMetricsConfig,
        description="The servers' own /metrics (KV cache, queue, preemptions, tokens) and the leak rule.",
    )
    control: ControlConfig = Field(
        default_factory=ControlConfig, description="What runs started through the Prefect API may choose."
    )
    trends: TrendsConfig = Field(default_factory=TrendsConfig, description="Trends in the weekly review.")
    liveness: LivenessConfig = Field(default_factory=LivenessConfig, description="5-minute liveness check.")
    prometheus: PrometheusConfig = Field(
        default_factory=PrometheusConfig, description="Prometheus export (textfile collector, Pushgateway)."
    )

    # Set by load_config; not a TOML key.
    source: str | None = Field(default=None, exclude=True, description="File this config was read from.")

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, v: list[EndpointConfig]) -> list[EndpointConfig]:
        return require_unique(v, lambda e: e.name, "duplicate endpoint name")

    @property
    def state_path(self) -> Path:
        p = Path(os.path.expanduser(self.state_dir))
        p.mkdir(parents=True, exist_ok=True)
        return p

    def endpoint(self, name: str) -> EndpointConfig:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise ConfigError(f"no endpoint named {name!r}", file=self.source, key="endpoints")


def _loc_to_key(loc: tuple, data: dict) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def find_config_path(path: str | os.PathLike | None = None) -> Path | None:
    """--config, else $LLM_UPKEEP_CONFIG, else ./llm-upkeep.toml; None when none exists (defaults)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", file=p)
        return p
    env = os.environ.get(ENV_CONFIG)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"config file named by ${ENV_CONFIG} not found", file=p)
        return p
    p = Path.cwd() / DEFAULT_CONFIG_NAME
    return p if p.is_file() else None


def parse_config(data: dict, source: str | None = None) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc_to_key(err["loc"], data)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; see examples/llm-upkeep.toml)"
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise ConfigError(msg + more, file=source or "<config>", key=key) from None
    cfg.source = source
    return cfg


def load_config(path: str | os.PathLike | None = None) -> Config:
    p = find_config_path(path)
    if p is None:
        return Config()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=p) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})", file=p) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=p) from None
    cfg = parse_config(data, source=str(p))
    register_config_secrets(cfg)  # before anything reads one: every secret it names is masked
    return cfg
