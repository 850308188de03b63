"""Running llm-upkeep across many GPU hosts: where every step of every flow runs.

The placement model (:data:`PLACEMENTS`): each step of each flow says where it must run:
``central`` (HTTP probes, benchmarks, registry and CVE checks, the fleet reports), ``endpoint-host``
(a restart, a model switch, a rollback: on the host of the endpoint it acts on) or ``every-host``
(NVML, disks, log rotation and server logs, sockets, firewall, files, local backup sets). The
fleet's deployments are derived from it (:func:`fleet_deployment_specs`), so prefect.yaml still
writes every schedule once, and a deployment whose flow cannot take what its placement needs is
refused with the deployment and the parameter named, never run in the wrong place.

Everything here is planning without Prefect; tasks/fleet.py dispatches host parts at run time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.configbase import ConfigError
from llm_upkeep.fleet_config import (  # noqa: F401 - re-exported: the fleet's names in one place
    ALL_HOST_STEPS,
    HOST_ENV,
    FleetConfig,
    FleetHost,
    HostStep,
    current_host,
    host_slug,
)

if TYPE_CHECKING:
    from llm_upkeep.deploy import DeploymentSpec

Scope = Literal["all", "central", "host"]
SCOPES: tuple[str, ...] = ("all", "central", "host")


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
    """What one daily-health run covers.

    endpoints: those it probes. owned: those whose restarts and runbook it decides (a host part
    sent without probes still restarts its own endpoints on a GPU memory alert, from NVML here)."""

    scope: str
    host: str | None
    endpoints: list[EndpointConfig]
    gpu: bool
    disk: bool
    logs: bool
    restart: bool
    key_suffix: str
    owned: list[EndpointConfig] = field(default_factory=list)

    def describe(self) -> str:
        steps = [s for s in ("gpu", "disk", "logs", "restart") if getattr(self, s)]
        where = f"host {self.host}" if self.host else self.scope
        return f"{where}: {len(self.endpoints)} endpoint(s) probed; steps {', '.join(steps) or 'none'}"


def plan_scope(
    cfg: Config,
    scope: str = "all",
    host: str | None = None,
    endpoints: list[str] | None = None,
    probe: bool = True,
    host_checks: bool = True,
) -> ScopePlan:
    """all: everything here (one host). central: every probe plus the steps that are not
    host-local. host: the host-local steps of `host`, and probes of its own endpoints only when it
    restarts them (a restart decision needs a TTFT measured where the restart happens).

    The rest only narrow (a run's parameters never widen what the config allows): endpoints, names
    this run is limited to (an unknown name, or in a host part another host's, is an error);
    probe=False probes nothing (a fleet's host part: the central run probes, then sends the
    endpoints it found failing back to their host to re-check); host_checks=False skips the GPU,
    disk and log steps (that re-check: the host's first part ran them)."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}", key="scope")
    fleet = cfg.fleet
    gpu_on, logs_on = cfg.gpu.enabled, bool(cfg.logs.dirs)
    if scope == "all":
        if host is not None:
            raise ConfigError("host is only used with scope 'host'", key="host")
        plan = ScopePlan("all", None, list(cfg.endpoints), gpu_on, True, logs_on, True, "")
    elif scope == "central":
        if host is not None:
            raise ConfigError("host is only used with scope 'host'", key="host")
        local = fleet.is_local
        plan = ScopePlan(
            "central", None, list(cfg.endpoints), gpu_on and not local("gpu"), not local("disk"),
            logs_on and not local("logs"), not local("restart"), "",
        )  # fmt: skip
    else:
        if not host:
            raise ConfigError("scope 'host' needs a host name", key="host")
        if fleet.enabled:
            fleet.host(host)
        elif host not in {e.host for e in cfg.endpoints} | {"local"}:
            raise ConfigError(f"no endpoint runs on host {host!r} and [fleet] lists no hosts", key="host")
        restart = fleet.is_local("restart")
        mine = [e for e in cfg.endpoints if e.host == host] if restart else []
        plan = ScopePlan(
            "host", host, mine, gpu_on and fleet.is_local("gpu"), fleet.is_local("disk"),
            logs_on and fleet.is_local("logs"), restart, f"-host-{host_slug(host)}",
        )  # fmt: skip
    return _narrow(cfg, plan, endpoints, probe, host_checks)


def central_metrics_endpoints(
    cfg: Config, endpoints: list[EndpointConfig], part_hosts: set[str]
) -> list[EndpointConfig]:
    """The endpoints whose servers' /metrics a central daily-health run reads itself: those whose
    host got no part that reads them.

    Why: a host part reads its own servers' /metrics (their pre-allocation relaxes that host's
    NVML device-total rule), which it does when it owns their restarts (restart host-local). The
    central run reading them as well read every server twice a day (1,000 reads at 500 endpoints)
    and listed each server's metrics checks twice in the fleet report, once per reader. A host
    whose part could not be created keeps its endpoints here; one whose part goes missing later is
    reported missing with the rest of its host checks."""
    if not cfg.fleet.is_local("restart"):
        return list(endpoints)
    return [e for e in endpoints if e.host not in part_hosts]


def _narrow(cfg: Config, plan: ScopePlan, names: list[str] | None, probe: bool, host_checks: bool) -> ScopePlan:
    covered = list(plan.endpoints)
    if names is not None:
        known = {e.name: e for e in cfg.endpoints}
        for n in names:
            if n not in known:
                raise ConfigError(f"no endpoint named {n!r} in the config", key="endpoints")
            if plan.host is not None and known[n].host != plan.host:
                raise ConfigError(f"endpoint {n!r} runs on host {known[n].host!r}, not on {plan.host!r}",
                                  key="endpoints")  # fmt: skip
        wanted = set(names)
        covered = [e for e in covered if e.name in wanted]
    return ScopePlan(
        plan.scope, plan.host, covered if probe else [], plan.gpu and host_checks, plan.disk and host_checks,
        plan.logs and host_checks, plan.restart, plan.key_suffix, covered if plan.restart else [],
    )  # fmt: skip


def plan_rechecks(cfg: Config, checks: list, probed: list[EndpointConfig]) -> dict[str, list[str]]:
    """The endpoints a fleet's central run found failing, by the host that re-checks them.

    In a fleet whose restarts are host-local the central run probes and the hosts restart: each
    host gets back its own failing endpoints, re-probes them where the restart would happen
    (a central network problem never restarts a healthy server) and restarts or runs the runbook
    from its own reading. Healthy endpoints are probed once a day, not twice (each probe is a
    real generation on a production server). Hosts in fleet order, endpoints in config order."""
    if not (cfg.fleet.enabled and cfg.fleet.is_local("restart")):
        return {}
    failing = {c.target for c in checks if c.failing}
    by_host: dict[str, list[str]] = {}
    for e in probed:
        if e.name in failing:
            by_host.setdefault(e.host, []).append(e.name)
    return {h.name: by_host[h.name] for h in cfg.fleet.hosts if h.name in by_host}


def first_parts(cfg: Config, base: dict, endpoints: list[str] | None) -> dict[str, dict]:
    """Each host's first daily-health part: its own steps, no probes (the central run probes).

    base: what every part shares (scope, restart and runbook switches, config path). A central run
    narrowed to some endpoints hands each host only its share of them (a host given none runs its
    GPU, disk and log steps and restarts nothing), so a part never restarts what the run was not
    asked to cover."""
    per_host = {h.name: {**base, "host": h.name, "probe": False} for h in cfg.fleet.hosts}
    if endpoints is not None:
        for h, p in per_host.items():
            p["endpoints"] = [n for n in endpoints if cfg.endpoint(n).host == h]
    return per_host


def recheck_parts(base: dict, rechecks: dict[str, list[str]]) -> dict[str, dict]:
    """The second part of the hosts given endpoints back by plan_rechecks: probes of those
    endpoints only, and no GPU, disk or log steps (the host's first part ran them)."""
    return {h: {**base, "host": h, "endpoints": names, "host_checks": False} for h, names in rechecks.items()}


# ---------------------------------------------------------------- the placement model

Where = Literal["central", "endpoint-host", "every-host"]
WHERE: tuple[str, ...] = ("central", "endpoint-host", "every-host")


@dataclass(frozen=True)
class Step:
    """One step of a flow and where it runs. kind: the [fleet].host_local_steps entry that can
    move it to the central worker (e.g. disk for shared storage); None: it never moves."""

    what: str
    where: Where
    kind: str | None = None


# How a flow's steps become deployments on a fleet:
#   central      one deployment on the central queue.
#   per-host     a copy per host with prefect.yaml's schedule; no central copy.
#   coordinated  the central copy keeps the schedule (and triggers) and dispatches its host parts
#                to per-host copies (no schedule of their own), collecting their results with a
#                deadline into one fleet report.
#   forwarded    the central copy (run by hand) forwards the whole run to the copy on the host
#                of the endpoint it acts on, and waits for its result.
Mode = Literal["central", "per-host", "coordinated", "forwarded"]


@dataclass(frozen=True)
class FlowPlacement:
    mode: Mode
    steps: tuple[Step, ...]
    central_params: dict[str, Any] = field(default_factory=dict)
    host_params: tuple[str, ...] = ()


_HOST = ("scope", "host")
PLACEMENTS: dict[str, FlowPlacement] = {
    "daily-health": FlowPlacement(
        "coordinated",
        (
            Step("HTTP probes of every endpoint (TTFT, tokens/s, errors)", "central"),
            Step("GPU memory and temperature (NVML)", "every-host", "gpu"),
            Step("disk usage of health.disk_paths", "every-host", "disk"),
            Step("log rotation of logs.dirs", "every-host", "logs"),
            Step("servers' /metrics (KV cache, queue, preemptions) of this host's own endpoints", "every-host",
                 "restart"),
            Step("re-probe of the endpoints the central run found failing, guarded restart, recovery probe",
                 "endpoint-host", "restart"),
            Step("runbook chained on a degraded host part (its own endpoints)", "endpoint-host", "restart"),
            Step("fleet report: one row per host, a missing host alerted", "central"),
        ),
        {"scope": "central"},
        _HOST,
    ),
    "scheduled-restart": FlowPlacement(
        "per-host", (Step("off-peak restart of the host's own endpoints", "endpoint-host", "restart"),),
        host_params=("host",),
    ),  # fmt: skip
    "weekly-benchmark": FlowPlacement(
        "central", (Step("benchmark over HTTP, comparison with the baseline, Slack", "central"),)
    ),
    "liveness": FlowPlacement(
        "central", (Step("one-token generation per endpoint over HTTP, down/resolved alerts", "central"),)
    ),
    "security-audit": FlowPlacement(
        "coordinated",
        (
            Step("exposure of every endpoint, server versions against known CVEs", "central"),
            Step("listening sockets and firewall rules", "every-host"),
            Step("file permissions of models, configs, secrets", "every-host"),
            Step("access logs", "every-host"),
            Step("fleet report: one section set per host, a missing host alerted", "central"),
        ),
        {"scope": "central"},
        _HOST,
    ),
    "cost-review": FlowPlacement(
        "coordinated",
        (
            Step("GPU energy from this host's NVML samples", "every-host", "gpu"),
            Step("tokens served: its own endpoints' counters, its request logs", "every-host", "gpu"),
            Step("hosting, hardware, cloud price comparison", "central"),
            Step("fleet report: energy per host, a missing host alerted", "central"),
        ),
        {"scope": "central"},
        _HOST,
    ),
    "weekly-review": FlowPlacement(
        "coordinated",
        (
            Step("error logs of this host's servers", "every-host", "logs"),
            Step("GPU temperatures from this host's samples, driver drift (NVML)", "every-host", "gpu"),
            Step("trends from this host's history (memory, TTFT, temperatures)", "every-host"),
            Step("model updates in the registries", "central"),
            Step("fleet report: one row per host, a missing host alerted", "central"),
        ),
        {"scope": "central"},
        _HOST,
    ),
    "gpu-sampling": FlowPlacement(
        "per-host",
        (
            Step("NVML reading into this host's history", "every-host", "gpu"),
            Step("token counters and /metrics of this host's own endpoints", "every-host", "gpu"),
        ),
        host_params=("host",),
    ),
    "monthly-backup": FlowPlacement(
        "per-host",
        (Step("backup of this host's sets into its own snapshot namespace; its retention", "every-host",
              "backup"),),
        host_params=("host",),
    ),  # fmt: skip
    "restore-drill": FlowPlacement(
        "per-host",
        (Step("restore a sample of this host's latest snapshot and compare with its sources", "every-host",
              "backup"),),
        host_params=("host",),
    ),  # fmt: skip
    "runbook": FlowPlacement(
        "coordinated",
        (
            Step("dispatch to the hosts of the endpoints concerned, collect their incidents", "central"),
            Step("observe, diagnose, fix (restart, re-pull, log reads), verify", "endpoint-host", "restart"),
        ),
        {},
        ("host",),
    ),
    "evaluate-model": FlowPlacement(
        "forwarded",
        (Step("pull, verify, benchmark on staging, approval, switch, probe, rollback", "endpoint-host",
              "restart"),),
        host_params=("host",),
    ),  # fmt: skip
    "rollback-model": FlowPlacement(
        "forwarded",
        (Step("swap the active version back, restart, probe", "endpoint-host", "restart"),),
        host_params=("host",),
    ),
}


def placement(name: str) -> FlowPlacement:
    """A deployment without an entry runs centrally (a new flow is central until it says otherwise)."""
    return PLACEMENTS.get(name) or FlowPlacement("central", (Step("every step", "central"),))


def effective_where(fleet: FleetConfig, step: Step) -> str:
    """A host-local step whose kind is left out of host_local_steps runs centrally."""
    if step.where != "central" and step.kind is not None and not fleet.is_local(step.kind):
        return "central"
    return step.where


def runs_on_hosts(fleet: FleetConfig, name: str) -> bool:
    """Whether deployment `name` has per-host copies on this fleet."""
    if not fleet.enabled:
        return False
    p = placement(name)
    return p.mode != "central" and any(effective_where(fleet, s) != "central" for s in p.steps)


def checked_host(cfg: Config, host: str | None) -> str | None:
    """A flow's host parameter, validated: a known fleet host, and the one this worker serves.

    A run meant for host B that reaches host A's worker (a queue named twice, a copied unit
    file) is refused rather than reading or restarting A's servers under B's name."""
    if host is None:
        return None
    if cfg.fleet.enabled:
        cfg.fleet.host(host)
    here = current_host()
    if here is not None and here != host:
        raise ConfigError(f"this run is for host {host!r} but this worker serves host {here!r} "
                          f"(${HOST_ENV}); check the work queues in [[fleet.hosts]]", key="host")  # fmt: skip
    return host


def this_host(cfg: Config, explicit: str | None = None) -> str | None:
    """The host a command acts for: --host, else the worker's $LLM_UPKEEP_HOST, else the fleet
    host named like this machine (short hostname); None on a single host."""
    if explicit:
        if cfg.fleet.enabled:
            cfg.fleet.host(explicit)
        return explicit
    if current_host():
        return current_host()
    if cfg.fleet.enabled:
        import socket

        me = socket.gethostname().split(".")[0]
        for h in cfg.fleet.hosts:
            if h.name == me:
                return me
    return None


def host_deployment_name(name: str, host: str) -> str:
    return f"{name}-{host}"


def endpoints_of(cfg: Config, host: str) -> list[EndpointConfig]:
    return [e for e in cfg.endpoints if e.host == host]


def fleet_deployment_specs(
    specs: list[DeploymentSpec], cfg: Config, flow_params: dict[str, set[str]]
) -> list[DeploymentSpec]:
    """prefect.yaml's deployments placed on the fleet's pool and queues, as PLACEMENTS says.

    flow_params: deployment name -> parameter names its flow takes (read by the caller, which
    imports the flows), so this stays a pure function. A deployment that must have per-host copies
    whose flow lacks a parameter they need is refused, naming both.
    """
    check_fleet(cfg)
    fleet = cfg.fleet
    out: list[DeploymentSpec] = []
    for spec in specs:
        place = placement(spec.name)
        per_host = runs_on_hosts(fleet, spec.name)
        if per_host:
            takes = flow_params.get(spec.name, set())
            needed = list(place.host_params) + [k for k in place.central_params if k not in place.host_params]
            for p in needed:
                if p not in takes:
                    raise ConfigError(
                        f"deployment {spec.name!r} runs {place.mode} on the fleet's hosts, but its flow "
                        f"({spec.entrypoint}) takes no {p!r} parameter: it would run in the wrong place",
                        key=f"deployments.{spec.name}",
                    )  # fmt: skip
        if not per_host or place.mode in ("coordinated", "forwarded"):
            central = spec.model_copy(deep=True)
            if per_host:
                central.parameters.update(place.central_params)
            central.work_pool = _pool(spec, fleet.work_pool, fleet.central_queue)
            out.append(central)
        if not per_host:
            continue
        for h in fleet.hosts:
            values = {"scope": "host", "host": h.name}
            copy = spec.model_copy(deep=True)
            copy.name = host_deployment_name(spec.name, h.name)
            copy.parameters.update({k: values[k] for k in place.host_params})
            copy.tags = [*spec.tags, f"host:{h.name}", *h.labels]
            copy.description = f"{spec.description or spec.name} (on host {h.name})"
            copy.work_pool = _pool(spec, fleet.work_pool, h.queue)
            if place.mode != "per-host":
                # Dispatched by the central copy: a schedule or trigger here would run it twice.
                copy.schedules = []
                extra = copy.__pydantic_extra__ or {}
                extra.pop("triggers", None)
            out.append(copy)
    return out


def placement_table(cfg: Config | None = None) -> list[dict[str, str]]:
    """Rows of docs/operations.md's "where each step runs" table (tested against the docs)."""
    fleet = cfg.fleet if cfg is not None else FleetConfig()
    rows = []
    for name, p in PLACEMENTS.items():
        for s in p.steps:
            rows.append({"deployment": name, "mode": p.mode, "step": s.what, "where": effective_where(fleet, s)})
    return rows


def _pool(spec: DeploymentSpec, pool: str, queue: str):
    from llm_upkeep.deploy import WorkPoolRef

    job_vars = dict(spec.work_pool.job_variables) if spec.work_pool else {}
    return WorkPoolRef(name=pool, work_queue_name=queue, job_variables=job_vars)


def worker_command(
    pool: str, queue: str | None, name: str, limit: int | None = None, warm: bool = False,
    state_dir: str | None = None,
) -> list[str]:
    """What `llm-upkeep worker` runs for one queue of a process pool: Prefect's process worker, or
    with warm=True the same worker whose runs fork from a pre-imported process (llm_upkeep/warm_start)."""
    if warm:
        cmd = [sys.executable, "-m", "llm_upkeep.warm_start.worker", "--pool", pool, "--name", name]
        if state_dir:
            cmd += ["--state-dir", state_dir]
    else:
        cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
               "--name", name]  # fmt: skip
    if queue:
        cmd += ["--work-queue", queue]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd
