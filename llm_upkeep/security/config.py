"""Config section [security] of the monthly audit."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import PositiveFloat, Section

Severity = Literal["low", "medium", "high", "critical"]
Product = Literal["ollama", "vllm", "llamacpp"]


class AccessLogSource(Section):
    path: str = Field(
        description="Log file or glob (e.g. /var/log/nginx/access.log*); .gz files are read too."
    )
    format: Literal["jsonl", "nginx"] = Field(
        description="'jsonl': one JSON request record a line; 'nginx': the nginx/Apache combined format."
    )
    ts_field: str | None = Field(
        default=None,
        description="JSONL field with the request time (default: ts, time, timestamp, @timestamp).",
    )
    client_field: str | None = Field(
        default=None,
        description="JSONL field with the client address (default: client, remote_addr, ip, ...).",
    )
    status_field: str | None = Field(
        default=None, description="JSONL field with the HTTP status (default: status, status_code)."
    )
    key_field: str | None = Field(
        default=None,
        description="JSONL field identifying the API key used (default: api_key_id, key_id, api_key, ...). "
        "For nginx logs the remote_user column is used.",
    )


class SecurityConfig(Section):
    extra_ports: list[int] = Field(
        default_factory=list,
        description="More TCP ports of LLM servers to check (sockets, firewall), besides the endpoints' ports.",
    )
    probe_timeout_s: PositiveFloat = Field(
        default=5.0, description="Timeout of each harmless HTTP probe of an endpoint, in seconds."
    )
    probe_dangerous_routes: bool = Field(
        default=True,
        description="Probe management routes (Ollama /api/create|push|delete|pull, vLLM routes outside /v1) "
        "with requests that cannot change anything.",
    )
    endpoint_products: dict[str, Product] = Field(
        default_factory=dict,
        description="Server software per endpoint name (ollama, vllm, llamacpp) when it cannot be detected.",
    )
    endpoint_versions: dict[str, str] = Field(
        default_factory=dict,
        description="Server version per endpoint name, for servers that do not report one (e.g. 'b5721').",
    )
    cve_table_path: str | None = Field(
        default=None,
        description="JSON file of known CVEs replacing the shipped table (same format as "
        "llm_upkeep/data/known_cves.json), so it can be updated without a release.",
    )
    cve_table_max_age_days: int = Field(
        default=120,
        ge=1,
        description="Say in the report that the CVE table needs updating after this many days.",
    )
    firewall_commands: bool = Field(
        default=True,
        description="Run the read-only listings `nft -j list ruleset`, `iptables-save` and `ufw status verbose` "
        "(they need root; missing or refused commands are noted, not errors).",
    )
    nft_json_path: str | None = Field(
        default=None, description="File with saved `nft -j list ruleset` output, used instead of running nft."
    )
    iptables_save_path: str | None = Field(
        default=None, description="File with saved `iptables-save` output, used instead of running it."
    )
    ufw_status_path: str | None = Field(
        default=None, description="File with saved `ufw status verbose` output, used instead of running ufw."
    )
    command_timeout_s: PositiveFloat = Field(
        default=10.0, description="Timeout of each firewall listing command, in seconds."
    )
    model_dirs: list[str] = Field(
        default_factory=list,
        description="Model stores whose permissions are checked (world-writable dirs or files are findings).",
    )
    config_files: list[str] = Field(
        default_factory=list,
        description="Config/env files checked for secrets readable by every user (globs allowed); the "
        "llm-upkeep config file itself is always checked.",
    )
    prompt_templates: list[str] = Field(
        default_factory=list,
        description="Prompt template files or dirs (globs allowed); world-writable ones are findings.",
    )
    max_files_per_dir: int = Field(
        default=20000, ge=1, description="Most files examined under one directory (bounds the walk)."
    )
    access_logs: list[AccessLogSource] = Field(
        default_factory=list, description="Request logs examined for unauthorized use."
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs clients may come from, e.g. ['10.0.0.0/8', '127.0.0.0/8']; empty: not checked.",
    )
    known_key_ids: list[str] = Field(
        default_factory=list,
        description="API key identifiers as they appear in the logs (alias or hash, never the key itself).",
    )
    known_api_keys_env: list[str] = Field(
        default_factory=list,
        description="Env vars holding the valid API keys; a log value equal to a key, its sha256 or its "
        "first 8 characters counts as known.",
    )
    lookback_days: PositiveFloat = Field(
        default=31, description="How far back the access logs are examined, in days."
    )
    auth_failure_burst: int = Field(
        default=20, ge=1, description="This many 401/403 answers to one client within the window is a burst."
    )
    auth_failure_window_s: PositiveFloat = Field(
        default=300, description="Window of the 401/403 burst detection, in seconds."
    )
    business_hours: tuple[int, int] = Field(
        default=(7, 20), description="Working hours [start, end) in the business timezone, e.g. [7, 20]."
    )
    business_days: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="Working weekdays, 0 = Monday."
    )
    business_timezone: str = Field(default="UTC", description="IANA timezone of the working hours.")
    off_hours_max_fraction: float = Field(
        default=0.3, ge=0, le=1, description="Off-hours share of requests above which volume is a finding."
    )
    off_hours_min_requests: int = Field(
        default=200, ge=0, description="Off-hours volume below this many requests is never a finding."
    )
    slack_min_severity: Severity = Field(
        default="high", description="Findings at or above this severity are sent to Slack."
    )

    @field_validator("allowed_networks")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR network: {net!r}") from None
        return v

    @field_validator("extra_ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if not 0 < p < 65536]
        if bad:
            raise ValueError(f"not TCP ports: {bad}")
        return v

    @field_validator("business_days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in v):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return v

    @model_validator(mode="after")
    def _hours(self) -> SecurityConfig:
        a, b = self.business_hours
        if not (0 <= a < b <= 24):
            raise ValueError("business_hours must be [start, end) with 0 <= start < end <= 24")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.business_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.business_timezone!r}") from None
        return self
