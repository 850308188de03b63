"""Thin Prefect tasks of the model lifecycle: one step each.

Resumable steps (pull, import, verify, benchmark) persist their results with the cache policy
INPUTS + TASK_SOURCE + RUN_ID: a retry of the same flow run (Prefect's flow retries, or Retry in
the UI) finds them and resumes after the last finished step; a new run of the same candidate
does the work again (the servers may have changed since). Steps with side effects on the
served model (switch, probe, prune, Slack) are never cached.

The switch task carries an on_rollback hook: inside the flow's transaction, a failed
post-promotion probe rolls the transaction back and the hook restores the previous version
(swap back, restart, probe).
"""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact, create_markdown_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE
from prefect.transactions import get_transaction

from llm_upkeep.alerts import Delivery
from llm_upkeep.clients import LLMError, make_http_client
from llm_upkeep.config import AlertsConfig, Config, EndpointConfig
from llm_upkeep.models.endpoints import managed_endpoint
from llm_upkeep.models.evaluate import (
    CandidateBenchmark,
    CandidateCheck,
    PullSummary,
    acquire_file_candidate,
    benchmark_candidate,
    pull_candidate,
    verify_candidate,
)
from llm_upkeep.models.promote import (
    SwitchResult,
    SwitchStep,
    finish_switch,
    prune_versions,
    rollback,
    run_sync,
    switch_to,
    undo_switch,
)
from llm_upkeep.models.recheck import recheck_candidate

RESUMABLE = INPUTS + TASK_SOURCE + RUN_ID

# Results of rollback hooks, by switch key: the hook runs inside Prefect's transaction machinery
# and has no return path to the flow; the flow reads what it did from here.
ROLLBACKS: dict[str, SwitchResult] = {}


class PromotionProbeFailed(Exception):
    """The promoted version did not answer: raised to roll the promotion's transaction back."""

    def __init__(self, result: SwitchResult):
        self.result = result
        why = result.ready.last_error if result.ready else result.detail
        super().__init__(f"{result.endpoint}: {result.to_version} did not answer: {why}")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")[:100]


def retry_pull(task, task_run, state) -> bool:
    """Retry network trouble, not a model the registry does not have."""
    exc = getattr(state, "data", None)
    return not (isinstance(exc, LLMError) and exc.kind in ("http_4xx", "auth"))


@task(name="pull-model", persist_result=True, cache_policy=RESUMABLE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_pull, task_run_name="pull-{model}-on-{endpoint.name}")  # fmt: skip
async def pull_model_task(endpoint: EndpointConfig, model: str, key: str) -> PullSummary:
    art = await acreate_progress_artifact(
        progress=0.0, key=key, description=f"Pull of {model} on {endpoint.name}"
    )

    async def progress(pct: float, status: str) -> None:
        await aupdate_progress_artifact(
            art, progress=pct, description=f"Pull of {model} on {endpoint.name}: {status}"
        )

    async with make_http_client() as http:
        return await pull_candidate(endpoint, model, http, progress)


@task(name="import-candidate", persist_result=True, cache_policy=RESUMABLE)
def import_candidate_task(cfg: Config, endpoint: str, candidate: str) -> str:
    return acquire_file_candidate(cfg, managed_endpoint(cfg, endpoint), candidate)


@task(name="verify-candidate", persist_result=True, cache_policy=RESUMABLE)
def verify_candidate_task(
    cfg: Config, endpoint: str, selector: str, expected_sha256: str | None, expected_digest: str | None
) -> CandidateCheck:
    return verify_candidate(cfg, managed_endpoint(cfg, endpoint), selector, expected_sha256=expected_sha256,
                            expected_digest=expected_digest)  # fmt: skip


@task(name="recheck-candidate", cache_policy=NO_CACHE)
def recheck_candidate_task(cfg: Config, endpoint: str, selector: str, verified_digest: str | None) -> CandidateCheck:
    """Never cached: it must read the disk right before the switch, on a retry too."""
    return recheck_candidate(cfg, managed_endpoint(cfg, endpoint), selector, verified_digest)


@task(name="benchmark-candidate", persist_result=True, cache_policy=RESUMABLE)
async def benchmark_candidate_task(
    cfg: Config, endpoint: str, staging: EndpointConfig, selector: str
) -> CandidateBenchmark:
    async with make_http_client() as http:
        return await benchmark_candidate(cfg, managed_endpoint(cfg, endpoint), staging, selector, http)


@task(name="publish-model-evaluation", cache_policy=NO_CACHE)
def publish_evaluation_task(markdown: str, key: str) -> None:
    create_markdown_artifact(
        key=key, markdown=markdown, description="Candidate model against the current one"
    )


@task(name="switch-model", cache_policy=NO_CACHE)
async def switch_model_task(cfg: Config, endpoint: str, to: str, reason: str, switch_key: str) -> SwitchStep:
    m = managed_endpoint(cfg, endpoint)
    async with make_http_client() as http:
        step = await switch_to(cfg, m, to, http, action="promote", reason=reason)
    txn = get_transaction()
    if txn is not None:
        txn.set("model_switch", {"cfg": cfg, "endpoint": endpoint, "step": step, "key": switch_key})
    return step


@switch_model_task.on_rollback
def restore_previous_version(txn) -> None:
    """The transaction failed after the switch: put the previous version back and wait for it."""
    data = txn.get("model_switch")
    cfg, step = data["cfg"], data["step"]
    m = managed_endpoint(cfg, data["endpoint"])

    async def undo() -> SwitchResult:
        async with make_http_client() as http:
            return await undo_switch(
                cfg, m, step, http, reason=f"post-promotion probe of {step.to_version} failed"
            )

    ROLLBACKS[data["key"]] = run_sync(undo())


@task(name="post-promotion-probe", cache_policy=NO_CACHE)
async def post_promotion_probe_task(
    cfg: Config, endpoint: str, step: SwitchStep, reason: str
) -> SwitchResult:
    """Probe until the promoted version answers; raises PromotionProbeFailed when it does not."""
    m = managed_endpoint(cfg, endpoint)
    async with make_http_client() as http:
        res = await finish_switch(cfg, m, step, http, t0=step.started, undoes=None, reason=reason)
    if not res.ok:
        raise PromotionProbeFailed(res)
    return res


@task(name="prune-model-versions", cache_policy=NO_CACHE)
async def prune_versions_task(cfg: Config, endpoint: str) -> list[str]:
    async with make_http_client() as http:
        return await prune_versions(cfg, managed_endpoint(cfg, endpoint), http)


@task(name="rollback-model", cache_policy=NO_CACHE)
async def rollback_model_task(cfg: Config, endpoint: str | None, to: str | None, reason: str) -> SwitchResult:
    return await rollback(cfg, endpoint=endpoint, to=to, reason=reason)


@task(name="notify-model-outcome", cache_policy=NO_CACHE)
def notify_task(cfg: AlertsConfig, text: str, blocks: list[dict]) -> Delivery:
    from llm_upkeep.notify import deliver  # Slack and every Apprise URL

    return deliver(cfg, text.split(":", 1)[0], text, blocks, kind="info")
