"""Dispatching a flow's host parts to the hosts' work queues, and handing their results back.

How a host part reaches the central flow: the central run creates the part's flow run on the
host's deployment (``run_deployment``, as a subflow, so the UI links them) and waits for it up to
[fleet].part_timeout_s; the part attaches its typed result to its own flow run as an artifact of
type ``llm-upkeep-fleet-part``, which the central run reads back through the API. Only the
Prefect server is shared: no result storage or file system spans the hosts. A part not final by
the deadline is reported missing with the state it was left in (never waited on forever, never
silently dropped).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from pydantic import BaseModel

from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.configbase import ConfigError
from llm_upkeep.fleet import checked_host, host_deployment_name, runs_on_hosts
from llm_upkeep.fleet_parts import HostPart, missing_reason, part_status
from llm_upkeep.redact import redact

PART_ARTIFACT = "llm-upkeep-fleet-part"
T = TypeVar("T", bound=BaseModel)


def deployment_run() -> bool:
    """True inside a flow run created from a deployment (a worker's run); False for a local call
    (`llm-upkeep run`, tests, serve's single host without a fleet), which never dispatches."""
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def dispatching(cfg: Config) -> bool:
    """Whether this run hands host work to the hosts' queues: a fleet, and a deployment run."""
    return cfg.fleet.enabled and deployment_run()


@task(name="fleet-publish-part", cache_policy=NO_CACHE)
def publish_part_task(result: BaseModel) -> None:
    """Attach this host part's typed result to its flow run for the central run to read."""
    from prefect import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(type=PART_ARTIFACT, data=result.model_dump(mode="json"), flow_run_id=ctx.flow_run.id,
                           description="Typed result of this host part, read by the central fleet run")
        )  # fmt: skip


def publish_if_part(host: str | None, result: BaseModel) -> None:
    """A host part run by a worker publishes its result; a local run has nobody to tell."""
    if host and deployment_run():
        publish_part_task(result)


async def _read_part_data(client, flow_run_id) -> dict[str, Any] | None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    arts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=[PART_ARTIFACT])
        )
    )  # fmt: skip
    return arts[-1].data if arts else None


POLL_S = 0.5  # one read of all parts' states per poll, whatever the host count


async def _start_part(deployment: str, host: str, parameters: dict[str, Any], flow_name: str | None):
    """Create one host part's flow run on the host's deployment (a subflow, so the UI links them)."""
    from prefect.deployments import run_deployment

    name = f"{flow_name or deployment}/{host_deployment_name(deployment, host)}"
    try:
        return await run_deployment(name, parameters=parameters, timeout=0, tags=[f"host:{host}"])
    except Exception as exc:  # no such deployment (not deployed for this fleet), server unreachable
        return HostPart(host=host, status="failed",
                        detail=redact(f"could not start {name}: {type(exc).__name__}: {exc}")[:500])  # fmt: skip


async def _wait_final(client, ids: list, timeout_s: float) -> dict:
    """Flow runs by id, polled together until all are final or the deadline passes.

    One `read_flow_runs` for all parts every POLL_S (run_deployment's own wait reads each run every
    5 s, which made a fleet report up to 5 s late per part), asking only for the runs not final
    yet: a final run does not change, and each run read costs the server its serialisation."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    runs: dict = {}
    waiting = list(ids)
    while True:
        page = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=waiting)),
                                           limit=len(waiting))  # fmt: skip
        runs.update({fr.id: fr for fr in page})
        waiting = [i for i in waiting if i not in runs or runs[i].state is None or not runs[i].state.is_final()]
        if not waiting or time.monotonic() >= deadline:
            return runs
        await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


async def _finish_part(client, host: str, fr, secs: float, timeout_s: float) -> HostPart:
    state = fr.state.name if fr.state else None
    if fr.end_time and fr.created:  # this part's own span on the server's clock, created to final
        secs = round((fr.end_time - fr.created).total_seconds(), 3)
    base = {"host": host, "state": state, "flow_run_id": str(fr.id), "seconds": secs}
    if fr.state is None or not fr.state.is_final():
        return HostPart(**base, status="missing", detail=missing_reason(state, timeout_s))
    if not fr.state.is_completed():
        msg = redact(fr.state.message or "")[:300]
        return HostPart(**base, status="failed", detail=f"{state}: {msg}" if msg else state or "failed")
    data = await _read_part_data(client, fr.id)
    if data is None:
        return HostPart(**base, status="failed", detail="completed without publishing its result")
    status = part_status(data.get("status") if isinstance(data, dict) else None)
    return HostPart(**base, status=status, data=data, detail=str(data.get("status", "")) if isinstance(data, dict) else "")


class StartedParts(BaseModel):
    """Host parts created and not yet waited for (so a flow can create them before its own work)."""

    model_config = {"arbitrary_types_allowed": True}
    t0: float
    timeout_s: float
    order: list[str]
    created: dict[str, Any]  # host -> the part's FlowRun
    failed: dict[str, HostPart]  # host -> why its part could not even be created


async def start_parts(
    deployment: str, per_host: dict[str, dict[str, Any]], timeout_s: float, flow_name: str | None = None
) -> StartedParts:
    """Create every host's part on its host's deployment, all at once; returns without waiting."""
    t0 = time.monotonic()
    started = await asyncio.gather(*[_start_part(deployment, h, p, flow_name) for h, p in per_host.items()])
    pairs = list(zip(per_host, started, strict=True))
    return StartedParts(t0=t0, timeout_s=timeout_s, order=list(per_host),
                        created={h: fr for h, fr in pairs if not isinstance(fr, HostPart)},
                        failed={h: fr for h, fr in pairs if isinstance(fr, HostPart)})  # fmt: skip


async def wait_parts(started: StartedParts) -> list[HostPart]:
    """Wait for started parts until all are final or their deadline (counted from their creation)
    passes, then read their results. One row per host in the order given, whatever became of it."""
    from prefect import get_client

    out = dict(started.failed)
    if started.created:
        left = max(0.0, started.timeout_s - (time.monotonic() - started.t0))
        async with get_client() as client:
            runs = await _wait_final(client, [fr.id for fr in started.created.values()], left)
            secs = round(time.monotonic() - started.t0, 3)
            done = await asyncio.gather(*[
                _finish_part(client, h, runs.get(fr.id, fr), secs, started.timeout_s)
                for h, fr in started.created.items()
            ])  # fmt: skip
        out.update(dict(zip(started.created, done, strict=True)))
    return [out[h] for h in started.order]


async def run_parts(
    deployment: str, per_host: dict[str, dict[str, Any]], timeout_s: float, flow_name: str | None = None
) -> list[HostPart]:
    """Host parts: create each on its host's deployment, wait for all up to timeout_s, read results."""
    return await wait_parts(await start_parts(deployment, per_host, timeout_s, flow_name))


async def start_host_parts(
    cfg: Config, deployment: str, per_host: dict[str, dict[str, Any]], flow_name: str | None = None
) -> StartedParts:
    """Every host's part created at once, in fleet order; wait for them with wait_parts."""
    hosts = {h.name: per_host[h.name] for h in cfg.fleet.hosts if h.name in per_host}
    return await start_parts(deployment, hosts, cfg.fleet.part_timeout_s, flow_name)


async def run_host_part(
    deployment: str, host: str, parameters: dict[str, Any], timeout_s: float, flow_name: str | None = None
) -> HostPart:
    """One host part (a forwarded restart, switch or rollback)."""
    return (await run_parts(deployment, {host: parameters}, timeout_s, flow_name))[0]


async def run_host_parts(
    cfg: Config, deployment: str, per_host: dict[str, dict[str, Any]], flow_name: str | None = None
) -> list[HostPart]:
    """Every host's part at once; one row per host in fleet order, whatever became of it."""
    return await wait_parts(await start_host_parts(cfg, deployment, per_host, flow_name))


async def on_endpoint_host(
    cfg: Config, deployment: str, endpoint: EndpointConfig, host: str | None, parameters: dict[str, Any],
    result_type: type[T],
) -> T | None:
    """Where a restart, model switch or rollback of `endpoint` runs.

    None: run it here (one host; or this run is the copy on the endpoint's own host). Otherwise
    the central copy forwards the whole run to the endpoint host's deployment, waits up to
    [fleet].part_timeout_s and returns that run's typed result; a forwarded run that failed or
    never ran fails this one with the host and the reason, never runs it here instead.
    """
    host = checked_host(cfg, host)
    if host is not None:
        if endpoint.host != host:
            raise ConfigError(f"endpoint {endpoint.name!r} runs on host {endpoint.host!r}, not on {host!r}: "
                              "its restart or switch must run there", key="host")  # fmt: skip
        return None
    if not (dispatching(cfg) and runs_on_hosts(cfg.fleet, deployment)):
        return None
    part = await run_host_part(deployment, endpoint.host, {**parameters, "host": endpoint.host},
                               cfg.fleet.part_timeout_s)  # fmt: skip
    result = part.parse(result_type)
    if result is None:
        raise FleetPartError(f"{deployment} for {endpoint.name} on host {endpoint.host}: {part.status}: {part.detail}")
    return result


class FleetPartError(RuntimeError):
    """A forwarded run did not come back with a result (failed, crashed, or missing by the deadline)."""
