"""The [fleet] section of the config: hosts, their work queues, and how long the central flows
wait for a host's part.

Its own module, importing nothing of llm_upkeep but configbase, so llm_upkeep.config can hold it
without llm_upkeep.fleet (which plans with a whole Config) importing config back: no import circle.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import ConfigError, PositiveFloat, Section

HostStep = Literal["gpu", "disk", "logs", "restart", "backup"]
ALL_HOST_STEPS: tuple[str, ...] = ("gpu", "disk", "logs", "restart", "backup")

# `llm-upkeep worker --host NAME` sets it for every flow run of that worker: the flow then knows
# which fleet host it runs on (per-host backup namespace, "is this endpoint mine?").
HOST_ENV = "LLM_UPKEEP_HOST"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def host_slug(name: str) -> str:
    """A host name as it may appear in an artifact key (lowercase letters, digits, dashes)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower())).strip("-") or "host"


def valid_host_name(name: str) -> bool:
    return bool(_NAME.match(name))


def current_host() -> str | None:
    """The fleet host this process runs on (set by `llm-upkeep worker --host`), or None."""
    return os.environ.get(HOST_ENV) or None


class FleetHost(Section):
    name: str = Field(description="Host name, as endpoints name it in their `host` key.")
    work_queue: str | None = Field(
        default=None, description="Work queue of this host's worker (default: host-<name>)."
    )
    labels: list[str] = Field(
        default_factory=list, description="Tags added to this host's deployments and runs (e.g. 'h100')."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not valid_host_name(v):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return v

    @property
    def queue(self) -> str:
        return self.work_queue or f"host-{self.name}"


class FleetConfig(Section):
    work_pool: str = Field(default="llm-upkeep", description="Process work pool every fleet deployment uses.")
    central_queue: str = Field(
        default="central", description="Queue of the central worker (HTTP probes, reviews, benchmarks)."
    )
    hosts: list[FleetHost] = Field(
        default_factory=list, description="GPU hosts, each with its own queue and worker (empty: one host)."
    )
    host_local_steps: list[HostStep] = Field(
        default_factory=lambda: list(ALL_HOST_STEPS),
        description="Steps that run on the host they concern: gpu (NVML), disk, logs (rotation), "
        "restart, backup (local files). The rest run centrally.",
    )
    part_timeout_s: PositiveFloat = Field(
        default=900.0,
        description="How long a central flow waits for each host's part (a fleet report row, a "
        "restart dispatched to the endpoint's host); a part not finished by then is reported missing.",
    )
    worker_poll_s: PositiveFloat = Field(
        default=5.0,
        description="How often `llm-upkeep worker` asks the Prefect server for runs to start "
        "(PREFECT_WORKER_QUERY_SECONDS, whose own default of 10 s would add up to 10 s to every "
        "host part of a fleet report; each poll costs the server CPU, about 35 ms on a small "
        "machine); an explicit PREFECT_WORKER_QUERY_SECONDS wins.",
    )

    @model_validator(mode="after")
    def _unique(self) -> FleetConfig:
        names = [h.name for h in self.hosts]
        queues = [h.queue for h in self.hosts] + [self.central_queue]
        for what, items in (("host name", names), ("work queue", queues)):
            dup = sorted({x for x in items if items.count(x) > 1})
            if dup:
                raise ValueError(f"duplicate {what} {dup[0]!r}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.hosts)

    def host(self, name: str) -> FleetHost:
        for h in self.hosts:
            if h.name == name:
                return h
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise ConfigError(f"no fleet host named {name!r} (known: {known})", key="fleet.hosts")

    def is_local(self, step: str) -> bool:
        return step in self.host_local_steps


def fleet_warnings(cfg) -> list[str]:
    """Settings valid one by one that defeat each other in a fleet (``config check`` prints them).

    Why: a host part that restarts a server re-probes it for up to the restart's or the runbook's
    verification window; a central run that stops waiting sooner reports that host missing while
    its part is still working (seen in the fleet test, whose part deadline equalled the runbook's
    120 s window). Not an error: a short deadline can be what a user wants for the report."""
    if not cfg.fleet.enabled:
        return []
    part = cfg.fleet.part_timeout_s
    out = []
    for key, seconds, what in (
        ("runbook.verify_timeout_s", cfg.runbook.verify_timeout_s, "verifies a fix"),
        ("restart.recover_timeout_s", cfg.restart.recover_timeout_s, "verifies a restart"),
    ):
        if part <= seconds:
            out.append(f"fleet.part_timeout_s ({part:g} s) is not above {key} ({seconds:g} s): a host part that "
                       f"{what} can be reported missing while it still works")  # fmt: skip
    return out
