"""The evaluate-model flow: a candidate goes from "downloaded" to "served" only through here.

candidate -> pull (progress artifact) -> verify checksums -> benchmark on staging -> compare
with the current model -> markdown artifact -> approval (a person in the Prefect UI, or the
automatic policy) -> promote inside a transaction -> post-promotion probe (a failure rolls the
transaction back: the switch task's hook restores the previous version) -> Slack.

A retry of a failed run resumes after the last finished step (tasks/models.py) and does not
ask the person again (the decision is kept per flow run in state_dir).
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.transactions import transaction
from pydantic import Field

from llm_upkeep.control import effective_approval
from llm_upkeep.models.endpoints import managed_endpoint
from llm_upkeep.models.evaluate import (
    Decision,
    EvaluationResult,
    approval_description,
    auto_decision,
    load_decision,
    save_decision,
    slack_message,
    staging_for,
)
from llm_upkeep.models.guard import allowed_candidate
from llm_upkeep.redact import install_log_redaction, redact
from tasks.fleet import on_endpoint_host, publish_if_part
from tasks.models import (
    ROLLBACKS,
    PromotionProbeFailed,
    artifact_key,
    benchmark_candidate_task,
    import_candidate_task,
    notify_task,
    post_promotion_probe_task,
    prune_versions_task,
    publish_evaluation_task,
    pull_model_task,
    recheck_candidate_task,
    switch_model_task,
    verify_candidate_task,
)
from tasks.run_config import load_run_config


class ApprovalInput(RunInput):
    """What the person answers in the Prefect UI."""

    approve: bool = Field(default=False, description="Promote the candidate to production.")
    note: str = Field(default="", description="Why (recorded in the result and sent to Slack).")


def _run_id() -> str:
    try:
        return str(get_run_context().flow_run.id)
    except Exception:  # called outside a flow run (tests of the core): one decision per call
        return uuid.uuid4().hex


@flow(name="evaluate-model", log_prints=False)
async def evaluate_model(
    candidate: str,
    endpoint: str | None = None,
    config_path: str | None = None,
    approval: Literal["manual", "auto"] | None = None,
    expected_sha256: str | None = None,
    host: str | None = None,
) -> EvaluationResult:
    """host: on a fleet, the host this copy runs on; the central copy forwards the whole
    evaluation to the endpoint's host (the pull, the file swap and the restart happen there)."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    # The host's config is the authority: the parameters may narrow it, never widen it
    # (ParameterRefused fails the run before anything is pulled, copied or switched).
    cfg = load_run_config(config_path)
    m = managed_endpoint(cfg, endpoint)
    policy = effective_approval(cfg.models.approval, approval, source=cfg.source)
    allowed = allowed_candidate(cfg, m, candidate)
    params = {"candidate": candidate, "endpoint": m.name, "config_path": config_path, "approval": approval,
              "expected_sha256": expected_sha256}  # fmt: skip
    forwarded = await on_endpoint_host(cfg, "evaluate-model", m.endpoint, host, params, EvaluationResult)
    if forwarded is not None:
        logger.info("evaluate-model %s ran on host %s: %s", candidate, m.endpoint.host, forwarded.status)
        return forwarded
    staging = staging_for(cfg, m)
    run_id = _run_id()
    r = EvaluationResult(candidate=candidate, endpoint=m.name, staging=staging.name, policy=policy)

    def finish(status: str, detail: str) -> EvaluationResult:
        r.status, r.detail = status, redact(detail)
        text, blocks = slack_message(r)
        r.slack = notify_task(cfg.alerts, text, blocks).model_dump()
        r.seconds = round(time.monotonic() - t0, 3)
        logger.info("evaluate-model %s on %s: %s (%s)", candidate, m.name, status, r.detail)
        publish_if_part(host, r)
        return r

    # 1. The candidate on disk: pulled (Ollama, staging first: it benchmarks), or copied in (files).
    expected_digest = None
    if m.store == "ollama":
        seen: set[str] = set()
        for ep in (staging, m.endpoint):
            if ep.url in seen:
                continue
            seen.add(ep.url)
            s = await pull_model_task(ep, candidate, artifact_key("model-pull", ep.name, candidate))
            r.pulls.append(s)
        expected_digest = r.pulls[-1].digest
        selector = candidate
    else:
        selector = import_candidate_task(cfg, m.name, allowed)

    # 2. Checksums, offline: against the pin, or the digest the registry gave the pull. A files
    # candidate from a configured directory is pinned here; expected_sha256 is only a further
    # condition (a mismatch fails), never what makes a file trusted.
    r.verification = verify_candidate_task(cfg, m.name, selector, expected_sha256, expected_digest)
    if not r.verification.ok:
        p = r.verification.problems[0]
        return finish(
            "failed", f"checksum verification failed: {p.file}: expected {p.expected}, got {p.actual}"
        )

    # 3-5. Benchmark on staging, compare, publish.
    r.benchmark = await benchmark_candidate_task(cfg, m.name, staging, selector)
    publish_evaluation_task(approval_description(r, limit=100_000), artifact_key("model-evaluation", m.name))

    # 6. Approval.
    decision = load_decision(cfg, m.name, run_id, candidate)
    if decision is None:
        if r.policy == "auto":
            decision = auto_decision(cfg, r.benchmark)
        else:
            form = ApprovalInput.with_initial_data(
                description=approval_description(r), approve=False, note=""
            )
            from llm_upkeep.notices import approval_waiting
            from tasks.notify import flow_run_ui_link, send_notice_task

            title, text, blocks = approval_waiting(candidate, m.name, flow_run_ui_link(run_id),
                                                   cfg.models.approval_timeout_s)  # fmt: skip
            r.approval_notice = send_notice_task(cfg.alerts, title, text, blocks, "warning").model_dump()
            try:
                answer = await pause_flow_run(
                    wait_for_input=form, timeout=int(cfg.models.approval_timeout_s),
                    poll_interval=max(1, int(cfg.models.approval_poll_s)),
                )  # fmt: skip
                decision = Decision(approved=bool(answer.approve), by="person", note=answer.note)
            except FlowPauseTimeout:
                decision = Decision(approved=False, by="timeout",
                                    note=f"no answer within {cfg.models.approval_timeout_s:g} s")  # fmt: skip
        save_decision(cfg, m.name, run_id, candidate, decision)
    r.decision = decision
    if not decision.approved:
        status = "not_promoted" if decision.by == "auto" else "rejected"
        return finish(status, decision.note or "rejected")

    # 7. What was approved is still what is on disk (approval can take hours): hash it again.
    r.recheck = recheck_candidate_task(cfg, m.name, selector, r.verification.digest)
    if not r.recheck.ok:
        p = r.recheck.problems[0]
        return finish("failed", f"candidate changed after verification, not promoted: {p.file}: expected "
                                f"{p.expected}, got {p.actual}")  # fmt: skip

    # 8. Promote inside a transaction: a failed post-promotion probe rolls it back.
    key = uuid.uuid4().hex
    reason = f"evaluate-model {run_id}: {decision.by} approval"
    try:
        with transaction():
            step = await switch_model_task(cfg, m.name, selector, reason, key)
            r.switch = await post_promotion_probe_task(cfg, m.name, step, reason)
    except PromotionProbeFailed as exc:
        r.switch = exc.result
        r.rollback = ROLLBACKS.pop(key, None)
        back = r.rollback
        state = (
            "the previous version is served again"
            if back and back.ok
            else "ROLLBACK FAILED: check the server"
        )
        return finish("rolled_back", f"{exc}; {state}")
    pruned = await prune_versions_task(cfg, m.name)
    r.switch.pruned = pruned
    return finish("promoted", f"{candidate} is live on {m.name} ({r.switch.seconds:.1f} s, answering)")
