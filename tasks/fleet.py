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


async def run_host_part(
    deployment: str, host: str, parameters: dict[str, Any], timeout_s: float, flow_name: str | None = None
) -> HostPart:
    """One host part: create it on the host's deployment, wait up to timeout_s, read its result."""
    from prefect import get_client
    from prefect.deployments import run_deployment

    name = f"{flow_name or deployment}/{host_deployment_name(deployment, host)}"
    t0 = time.monotonic()
    try:
        fr = await run_deployment(name, parameters=parameters, timeout=timeout_s, tags=[f"host:{host}"])
    except Exception as exc:  # no such deployment (not deployed for this fleet), server unreachable
        return HostPart(host=host, status="failed",
                        detail=redact(f"could not start {name}: {type(exc).__name__}: {exc}")[:500])  # fmt: skip
    secs = round(time.monotonic() - t0, 3)
    state = fr.state.name if fr.state else None
    base = {"host": host, "state": state, "flow_run_id": str(fr.id), "seconds": secs}
    if fr.state is None or not fr.state.is_final():
        return HostPart(**base, status="missing", detail=missing_reason(state, timeout_s))
    if not fr.state.is_completed():
        msg = redact(fr.state.message or "")[:300]
        return HostPart(**base, status="failed", detail=f"{state}: {msg}" if msg else state or "failed")
    async with get_client() as client:
        data = await _read_part_data(client, fr.id)
    if data is None:
        return HostPart(**base, status="failed", detail="completed without publishing its result")
    status = part_status(data.get("status") if isinstance(data, dict) else None)
    return HostPart(**base, status=status, data=data, detail=str(data.get("status", "")) if isinstance(data, dict) else "")


async def run_host_parts(
    cfg: Config, deployment: str, per_host: dict[str, dict[str, Any]], flow_name: str | None = None
) -> list[HostPart]:
    """Every host's part at once; one row per host in fleet order, whatever became of it."""
    hosts = [h.name for h in cfg.fleet.hosts if h.name in per_host]
    parts = await asyncio.gather(*[
        run_host_part(deployment, h, per_host[h], cfg.fleet.part_timeout_s, flow_name) for h in hosts
    ])  # fmt: skip
    return list(parts)


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
