"""Running llm-upkeep across many GPU hosts.

Split of work: HTTP probes run centrally (one view of every endpoint, from where users reach
them); host-local steps (NVML, disk, log rotation, restarts, local backups) run on the host
they concern, through a work queue per host in one process work pool, with one worker per
host. This module plans both halves without Prefect: which endpoints and steps a daily-health
run covers for a scope (:func:`plan_scope`), and which deployments the fleet needs on which
queue (:func:`fleet_deployment_specs`), derived from prefect.yaml so schedules stay in one place.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import ConfigError, Section

if TYPE_CHECKING:
    from llm_upkeep.config import Config, EndpointConfig
    from llm_upkeep.deploy import DeploymentSpec

HostStep = Literal["gpu", "disk", "logs", "restart", "backup"]
ALL_HOST_STEPS: tuple[str, ...] = ("gpu", "disk", "logs", "restart", "backup")
Scope = Literal["all", "central", "host"]
SCOPES: tuple[str, ...] = ("all", "central", "host")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def host_slug(name: str) -> str:
    """A host name as it may appear in an artifact key (lowercase letters, digits, dashes)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower())).strip("-") or "host"


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
        if not _NAME.match(v):
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


def check_fleet(cfg: Config) -> None:
    """Every endpoint's host is a fleet host, so no endpoint silently loses its host-local steps."""
    if not cfg.fleet.enabled:
        return
    known = {h.name for h in cfg.fleet.hosts}
    for i, e in enumerate(cfg.endpoints):
        if e.host not in known:
            raise ConfigError(
                f"endpoint {e.name!r} runs on host {e.host!r}, which is not in [[fleet.hosts]]",
                file=cfg.source, key=f"endpoints[{i}].host",
            )  # fmt: skip


# ---------------------------------------------------------------- one daily-health run


@dataclass(frozen=True)
class ScopePlan:
    """What one daily-health run covers."""

    scope: str
    host: str | None
    endpoints: list[EndpointConfig]
    gpu: bool
    disk: bool
    logs: bool
    restart: bool
    key_suffix: str

    def describe(self) -> str:
        steps = [s for s in ("gpu", "disk", "logs", "restart") if getattr(self, s)]
        where = f"host {self.host}" if self.host else self.scope
        return f"{where}: {len(self.endpoints)} endpoint(s) probed; steps {', '.join(steps) or 'none'}"


def plan_scope(cfg: Config, scope: str = "all", host: str | None = None) -> ScopePlan:
    """all: everything here (one host). central: every probe plus the steps that are not
    host-local. host: the host-local steps of `host`, and probes of its own endpoints only when it
    restarts them (a restart decision needs a TTFT measured where the restart happens)."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}", key="scope")
    fleet = cfg.fleet
    gpu_on, logs_on = cfg.gpu.enabled, bool(cfg.logs.dirs)
    if scope == "all":
        if host is not None:
            raise ConfigError("host is only used with scope 'host'", key="host")
        return ScopePlan("all", None, list(cfg.endpoints), gpu_on, True, logs_on, True, "")
    if scope == "central":
        if host is not None:
            raise ConfigError("host is only used with scope 'host'", key="host")
        local = fleet.is_local
        return ScopePlan(
            "central", None, list(cfg.endpoints), gpu_on and not local("gpu"), not local("disk"),
            logs_on and not local("logs"), not local("restart"), "",
        )  # fmt: skip
    if not host:
        raise ConfigError("scope 'host' needs a host name", key="host")
    if fleet.enabled:
        fleet.host(host)
    elif host not in {e.host for e in cfg.endpoints} | {"local"}:
        raise ConfigError(f"no endpoint runs on host {host!r} and [fleet] lists no hosts", key="host")
    local = fleet.is_local
    restart = local("restart")
    mine = [e for e in cfg.endpoints if e.host == host] if restart else []
    return ScopePlan(
        "host", host, mine, gpu_on and local("gpu"), local("disk"), logs_on and local("logs"), restart,
        f"-host-{host_slug(host)}",
    )  # fmt: skip


# ---------------------------------------------------------------- deployments of a fleet


@dataclass(frozen=True)
class Route:
    """How one prefect.yaml deployment is placed in a fleet.

    steps: host-local steps it performs; it runs per host when any of them is host-local.
    keep_central: a central copy remains next to the per-host ones.
    central / per_host: parameters the copies get (only those the flow takes; `required` ones
    must be taken, or the fleet set-up is refused instead of running the wrong thing).
    """

    steps: tuple[str, ...]
    keep_central: bool = False
    central: tuple[tuple[str, Any], ...] = ()
    per_host: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


ROUTES: dict[str, Route] = {
    "daily-health": Route(
        steps=("gpu", "disk", "logs", "restart"),
        keep_central=True,
        central=(("scope", "central"),),
        per_host=("scope", "host"),
        required=("scope", "host"),
    ),  # fmt: skip
    "gpu-sampling": Route(steps=("gpu",), per_host=("host",)),
    # Reads this host's server logs, its GPU samples (state_dir) and its driver through NVML.
    "weekly-review": Route(steps=("logs", "gpu"), per_host=("host",)),
    "scheduled-restart": Route(steps=("restart",), per_host=("endpoints",)),
    "monthly-backup": Route(steps=("backup",), per_host=("host",)),
}


def host_deployment_name(name: str, host: str) -> str:
    return f"{name}-{host}"


def fleet_deployment_specs(
    specs: list[DeploymentSpec], cfg: Config, flow_params: dict[str, set[str]]
) -> list[DeploymentSpec]:
    """prefect.yaml's deployments placed on the fleet's pool and queues.

    flow_params: deployment name -> parameter names its flow takes (read by the caller, which
    imports the flows), so this stays a pure function.
    """
    check_fleet(cfg)
    fleet = cfg.fleet
    out: list[DeploymentSpec] = []
    for spec in specs:
        takes = flow_params.get(spec.name, set())
        route = ROUTES.get(spec.name)
        per_host = route is not None and fleet.enabled and any(fleet.is_local(x) for x in route.steps)
        if route is not None and per_host:
            lacking = [p for p in route.required if p not in takes]
            if lacking:
                raise ConfigError(
                    f"deployment {spec.name!r} must run per host, but its flow takes no {lacking} parameter",
                    key="fleet.host_local_steps",
                )
        if not per_host or route.keep_central:
            central = spec.model_copy(deep=True)
            if per_host:
                central.parameters.update({k: v for k, v in route.central if k in takes})
            central.work_pool = _pool(spec, fleet.work_pool, fleet.central_queue)
            out.append(central)
        if not per_host:
            continue
        for h in fleet.hosts:
            mine = [e.name for e in cfg.endpoints if e.host == h.name]
            values = {"scope": "host", "host": h.name, "endpoints": mine}
            copy = spec.model_copy(deep=True)
            copy.name = host_deployment_name(spec.name, h.name)
            copy.parameters.update({k: values[k] for k in route.per_host if k in takes})
            copy.tags = [*spec.tags, f"host:{h.name}", *h.labels]
            copy.description = f"{spec.description or spec.name} (on host {h.name})"
            copy.work_pool = _pool(spec, fleet.work_pool, h.queue)
            out.append(copy)
    return out


def _pool(spec: DeploymentSpec, pool: str, queue: str):
    from llm_upkeep.deploy import WorkPoolRef

    job_vars = dict(spec.work_pool.job_variables) if spec.work_pool else {}
    return WorkPoolRef(name=pool, work_queue_name=queue, job_variables=job_vars)


def worker_command(pool: str, queue: str | None, name: str, limit: int | None = None) -> list[str]:
    """`prefect worker start` for one queue of a process pool (what `llm-upkeep worker` runs)."""
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
           "--name", name]  # fmt: skip
    if queue:
        cmd += ["--work-queue", queue]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd
