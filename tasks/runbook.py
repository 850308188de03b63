"""Thin Prefect tasks of the runbook flow: one step each. Nothing is cached (NO_CACHE): the
runbook acts on what the servers do now, and every fix has side effects."""

from __future__ import annotations

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep.alerts import Delivery
from llm_upkeep.config import AlertsConfig, Config, EndpointConfig
from llm_upkeep.runbook.engine import Approval, read_gpus, remediate
from llm_upkeep.runbook.fixes import FixContext
from llm_upkeep.runbook.incident import Incident, RunbookResult, close_thread, open_thread
from llm_upkeep.runbook.observe import HostObservation, Observation, observe_endpoint, observe_host
from llm_upkeep.telemetry import GpuSnapshot


@task(name="runbook-observe-endpoint", cache_policy=NO_CACHE, task_run_name="observe-{endpoint.name}")
async def observe_endpoint_task(
    cfg: Config, endpoint: EndpointConfig, http: httpx.AsyncClient
) -> Observation:
    return await observe_endpoint(cfg, endpoint, http)


@task(name="runbook-read-gpus", cache_policy=NO_CACHE)
def read_gpus_task(cfg: Config) -> GpuSnapshot:
    return read_gpus(cfg)


@task(name="runbook-observe-host", cache_policy=NO_CACHE)
def observe_host_task(cfg: Config, gpus: GpuSnapshot) -> HostObservation:
    return observe_host(cfg, gpus)


@task(name="runbook-remediate", cache_policy=NO_CACHE, task_run_name="remediate-{incident.id}")
async def remediate_task(ctx: FixContext, incident: Incident, approval: Approval) -> Incident:
    """Fix and verify one incident (its actions and the re-probe are one step: the verification
    belongs to the fix it checks)."""
    return await remediate(ctx, incident, approval)


@task(name="runbook-open-slack-thread", cache_policy=NO_CACHE)
def open_thread_task(cfg: AlertsConfig, incident: Incident) -> Delivery | None:
    return open_thread(cfg, incident)


@task(name="runbook-close-slack-thread", cache_policy=NO_CACHE)
def close_thread_task(cfg: AlertsConfig, incident: Incident) -> list[Delivery]:
    return close_thread(cfg, incident)


@task(name="runbook-publish-report", cache_policy=NO_CACHE)
def publish_report_task(markdown: str, result: RunbookResult) -> None:
    create_markdown_artifact(key="runbook-incident-report", markdown=markdown,
                             description="Runbook incidents: symptom, evidence, action, result")  # fmt: skip
    if result.incidents:
        create_table_artifact(key="runbook-incidents", table=[i.public() | {"evidence": "; ".join(i.public()["evidence"])}
                                                             for i in result.incidents],
                              description="Every incident of the runbook run")  # fmt: skip
