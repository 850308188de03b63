"""The steps of the evaluate-model chain, without Prefect: pull, verify, benchmark in staging,
decide, and the messages that report it.

Benchmark reference: the production endpoint's pinned baseline (llm_upkeep.bench.baseline) for
the same suite and settings; when there is none, the current model is measured on production
now, with the same suite, and that run is the reference. Either way the candidate runs on the
staging endpoint, so staging should be the same hardware class as production (a slower staging
box reads as a regression; the markdown says which reference was used).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.clients import OllamaClient
from llm_upkeep.clients.ollama import same_model
from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.configbase import ConfigError
from llm_upkeep.models.active import version_name
from llm_upkeep.models.endpoints import Managed, managed_endpoint, managed_endpoints, models_state_dir
from llm_upkeep.models.hashing import Hasher
from llm_upkeep.models.inventory import Problem
from llm_upkeep.models.promote import (
    SwitchError,
    SwitchResult,
    import_version,
    norm_digest,
    resolve_candidate,
    switch_to,
    verify_file_version,
    verify_ollama_tag,
    wait_until_serving,
)
from llm_upkeep.models.store import StoreError, read_manifest
from llm_upkeep.redact import redact

ProgressFn = Callable[[float, str], Awaitable[None]]


class PullSummary(BaseModel):
    endpoint: str = Field(description="Endpoint pulled on.")
    model: str = Field(description="Tag pulled.")
    digest: str | None = Field(default=None, description="Digest the server reports after the pull.")
    layers: int = Field(default=0, description="Layers seen in the progress stream.")
    bytes_total: int = Field(default=0, description="Sum of the layers' sizes.")
    seconds: float = Field(default=0.0, description="Duration of the pull.")


async def pull_candidate(
    endpoint: EndpointConfig, model: str, http: httpx.AsyncClient, on_progress: ProgressFn | None = None,
    timeout_s: float = 6 * 3600,
) -> PullSummary:  # fmt: skip
    """/api/pull with its progress stream folded into one percentage (bytes over all layers)."""
    t0 = time.monotonic()
    client = OllamaClient(endpoint, http)
    totals: dict[str, int] = {}
    done: dict[str, int] = {}
    last = -1.0
    async for ev in client.pull(model, timeout_s=timeout_s):
        d = ev.get("digest")
        if d and isinstance(ev.get("total"), int):
            totals[d] = ev["total"]
            done[d] = int(ev.get("completed") or 0)
        total = sum(totals.values())
        pct = 100.0 * sum(done.values()) / total if total else 0.0
        if ev.get("status") == "success":
            pct = 100.0
        if on_progress is not None and (pct - last >= 5 or pct == 100.0) and pct != last:
            last = pct
            await on_progress(pct, str(ev.get("status") or ""))
    tags = await client.tags()
    digest = None
    for t in tags:
        if same_model(t.get("name") or t.get("model"), model):
            digest = norm_digest(t.get("digest"))
    return PullSummary(endpoint=endpoint.name, model=model, digest=digest, layers=len(totals),
                       bytes_total=sum(totals.values()), seconds=round(time.monotonic() - t0, 3))  # fmt: skip


class CandidateCheck(BaseModel):
    """The candidate's checksum verification."""

    ok: bool = Field(description="Every file matched.")
    selector: str = Field(description="What a switch selects: the tag, or the version's path.")
    version: str = Field(description="Tag or version name.")
    digest: str | None = Field(default=None, description="Manifest digest (Ollama).")
    problems: list[Problem] = Field(default_factory=list, description="What did not match.")
    files: int = Field(default=0, description="Files hashed.")
    bytes: int = Field(default=0, description="Bytes hashed.")
    seconds: float = Field(default=0.0, description="Duration.")


def acquire_file_candidate(cfg: Config, m: Managed, candidate: str) -> str:
    """The candidate's path inside the endpoint's versions_dir (copied in, verified, when outside)."""
    with Hasher(cfg.models.hash_workers) as h:
        return str(resolve_candidate(m, candidate, h))


def verify_candidate(
    cfg: Config, m: Managed, selector: str, *, expected_sha256: str | None = None,
    expected_digest: str | None = None,
) -> CandidateCheck:  # fmt: skip
    """Ollama: blobs against their names and sizes, manifest against the digest the server reported.
    Files: against the version's pin, or the publisher's sha256, pinning it when new."""
    t0 = time.monotonic()
    with Hasher(cfg.models.hash_workers) as h:
        if m.store == "ollama":
            out = CandidateCheck(ok=False, selector=selector, version=selector)
            out.problems = verify_ollama_tag(m, selector, h)
            try:
                man = read_manifest(m.models_dir or "", selector)
                out.digest = man.digest
                if expected_digest and man.digest != expected_digest:
                    out.problems.append(Problem(model=selector, file=str(man.path), expected=expected_digest,
                                                actual=man.digest, kind="manifest"))  # fmt: skip
            except StoreError:
                pass  # verify_ollama_tag already reported the missing manifest
        else:
            version = version_name(m, selector) or Path(selector).name
            out = CandidateCheck(ok=False, selector=selector, version=version)
            out.problems = verify_file_version(cfg, m, version, h, expected_sha256=expected_sha256)
        out.files, out.bytes = h.files_read, h.bytes_read
    out.ok = not out.problems
    out.seconds = round(time.monotonic() - t0, 3)
    return out


# ------------------------------------------------------------------ benchmark in staging


class CandidateBenchmark(BaseModel):
    """The candidate's benchmark on staging, judged against the current model's reference."""

    status: str = Field(description="ok | regression | error (the bench verdict).")
    reference: str = Field(description="What the candidate was compared with.")
    compared: bool = Field(default=False, description="A comparison was made.")
    regressions: list[dict[str, Any]] = Field(default_factory=list, description="What regressed.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Candidate's headline metrics.")
    reference_metrics: dict[str, Any] = Field(
        default_factory=dict, description="Reference's headline metrics."
    )
    quality: dict[str, Any] = Field(default_factory=dict, description="Candidate's quality summary.")
    error_rate: float = Field(default=0.0, description="Candidate's error rate.")
    notes: list[str] = Field(default_factory=list, description="What a reader should know.")
    run_id: str = Field(default="", description="Benchmark run id of the candidate.")
    markdown: str = Field(default="", description="Comparison, as markdown.")


async def stage_file_candidate(cfg: Config, m: Managed, staging: EndpointConfig, path: str,
                               http: httpx.AsyncClient) -> str:  # fmt: skip
    """Make the candidate the active version of a files-store staging endpoint and wait for it."""
    try:
        sm = managed_endpoint(cfg, staging.name)
    except ConfigError:
        raise SwitchError(f"staging endpoint {staging.name} needs a [[models.endpoints]] table (versions_dir, "
                          "active_link) so the candidate can be loaded there") from None  # fmt: skip
    assert sm.versions_dir is not None
    p = Path(path)
    if sm.versions_dir.resolve() != p.parent.resolve():
        with Hasher(cfg.models.hash_workers) as h:
            p = import_version(sm, p, h)
    step = await switch_to(cfg, sm, str(p), http, action="stage", reason=f"evaluate {p.name}")
    if step.restart is not None and not step.restart.executed:
        raise SwitchError(f"staging restart {step.restart.decision}: {step.restart.output_tail}")
    ready = await wait_until_serving(sm, http, timeout_s=cfg.models.probe_timeout_s,
                                     interval_s=cfg.models.probe_interval_s)  # fmt: skip
    if not ready.ok:
        raise SwitchError(f"staging {staging.name} does not answer with {p.name}: {ready.last_error}")
    return str(p)


async def benchmark_candidate(
    cfg: Config, m: Managed, staging: EndpointConfig, selector: str, http: httpx.AsyncClient
) -> CandidateBenchmark:
    """Run the suite on staging with the candidate; judge it against production's reference."""
    from llm_upkeep.bench import baseline as bl
    from llm_upkeep.bench.report import render_endpoint
    from llm_upkeep.bench.result import judge_run
    from llm_upkeep.bench.runner import RunSettings, run_suite
    from llm_upkeep.bench.suites import load_suite

    suite = load_suite(cfg.benchmark.suite, config_source=cfg.source)
    settings = RunSettings.from_config(cfg.benchmark, "chat")
    state_dir = str(cfg.state_path)
    if m.store == "ollama":
        cand_ep = staging.model_copy(update={"model": selector})
    else:
        await stage_file_candidate(cfg, m, staging, selector, http)
        cand_ep = staging
    run = await run_suite(cand_ep, suite, settings, http)
    # The production endpoint's pinned baseline, else the current model measured on production now.
    ref_run = None
    probe = run.model_copy(update={"target": m.name})
    ref = bl.find_baseline(state_dir, probe)
    if ref is not None:
        try:
            ref_run = bl.load_baseline(state_dir, ref)
            reference = f"pinned baseline {ref.baseline_id} of {m.name} (pinned {ref.pinned_at:%Y-%m-%d})"
        except bl.BaselineError as exc:
            ref_run = None
            reference = f"(baseline unreadable: {redact(exc)})"
    if ref_run is None:
        ref_run = await run_suite(m.endpoint, suite, settings, http)
        reference = f"the current model measured on {m.name} now (run {ref_run.run_id}; no pinned baseline)"
    e = await judge_run(
        run, suite, cfg.benchmark, state_dir, endpoint=cand_ep, http=http, baseline_run=ref_run
    )
    out = CandidateBenchmark(
        status=e.status, reference=reference, compared=e.comparison is not None, regressions=e.regressions,
        metrics=e.metrics, reference_metrics=ref_run.summary_metrics(), quality=e.quality,
        error_rate=float(e.metrics.get("error_rate") or 0.0), notes=e.notes, run_id=run.run_id,
    )  # fmt: skip
    out.markdown = redact(
        f"Candidate `{selector}` on staging `{staging.name}`, compared with {reference}.\n\n"
        + render_endpoint(e)
    )
    return out


# ------------------------------------------------------------------ decision


class Decision(BaseModel):
    approved: bool = Field(description="Promote the candidate.")
    by: str = Field(description="auto | person | timeout.")
    note: str = Field(default="", description="The person's note, or the policy's reason.")
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(), description="When (UTC).")


def auto_decision(cfg: Config, bench: CandidateBenchmark) -> Decision:
    """Promote only without regressions, under the error-rate bound, and (by default) with a comparison."""
    why = []
    if bench.status == "error":
        why.append("the benchmark failed on staging")
    if bench.regressions:
        why.append(
            "regressions: " + "; ".join(r.get("detail", r.get("metric", "?")) for r in bench.regressions)
        )
    if bench.error_rate > cfg.models.auto_max_error_rate:
        why.append(f"error rate {bench.error_rate:.0%} > {cfg.models.auto_max_error_rate:.0%}")
    if cfg.models.auto_require_baseline and not bench.compared:
        why.append("nothing to compare with")
    if why:
        return Decision(approved=False, by="auto", note="not promoted: " + "; ".join(why))
    return Decision(approved=True, by="auto", note=f"no regression against {bench.reference}")


def _decision_path(cfg: Config, endpoint: str, run_id: str) -> Path:
    return models_state_dir(cfg, endpoint) / "decisions" / f"{run_id}.json"


def save_decision(cfg: Config, endpoint: str, run_id: str, candidate: str, d: Decision) -> None:
    """Remembered per flow run, so a retry of a failed run does not ask the person again."""
    p = _decision_path(cfg, endpoint, run_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"candidate": candidate, **d.model_dump()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def load_decision(cfg: Config, endpoint: str, run_id: str, candidate: str) -> Decision | None:
    try:
        data = json.loads(_decision_path(cfg, endpoint, run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.pop("candidate", None) != candidate:
        return None
    return Decision.model_validate(data)


# ------------------------------------------------------------------ result and messages


class EvaluationResult(BaseModel):
    """The evaluate-model flow's typed result."""

    flow: str = Field(default="evaluate-model", description="Flow name.")
    status: str = Field(
        default="failed", description="promoted | rejected | not_promoted | rolled_back | failed."
    )
    candidate: str = Field(description="The candidate as given.")
    endpoint: str = Field(description="Endpoint promoted on.")
    staging: str | None = Field(default=None, description="Staging endpoint.")
    policy: str = Field(default="manual", description="manual | auto.")
    pulls: list[PullSummary] = Field(default_factory=list, description="Pulls (Ollama).")
    verification: CandidateCheck | None = Field(default=None, description="Checksum verification.")
    recheck: CandidateCheck | None = Field(
        default=None, description="The candidate hashed again right before the switch (after approval)."
    )
    benchmark: CandidateBenchmark | None = Field(default=None, description="Benchmark and comparison.")
    decision: Decision | None = Field(default=None, description="Approval.")
    switch: SwitchResult | None = Field(default=None, description="The promotion (and its probe).")
    rollback: SwitchResult | None = Field(default=None, description="The automatic rollback, if any.")
    slack: dict[str, Any] | None = Field(default=None, description="Slack delivery.")
    approval_notice: dict[str, Any] | None = Field(
        default=None, description="Delivery of the 'waiting for approval' notice (Slack/Apprise), when paused."
    )
    seconds: float = Field(default=0.0, description="Wall time.")
    detail: str = Field(default="", description="What happened, in one line.")

    def public(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        if self.benchmark is not None:
            d["benchmark"].pop("markdown", None)
        if self.verification is not None:
            d["verification"]["problems"] = [p.public() for p in self.verification.problems]
        if self.recheck is not None:
            d["recheck"]["problems"] = [p.public() for p in self.recheck.problems]
        return d


def approval_description(r: EvaluationResult, limit: int = 6000) -> str:
    """The text the person reads in the Prefect UI before answering."""
    b = r.benchmark
    head = [f"## Promote `{r.candidate}` on `{r.endpoint}`?", ""]
    if r.verification is not None:
        head.append(f"Checksums: {'all files match' if r.verification.ok else 'PROBLEMS'} "
                    f"({r.verification.files} files).")  # fmt: skip
    if b is not None:
        verdict = "**REGRESSION**: " + "; ".join(x.get("detail", "") for x in b.regressions) if b.regressions \
            else f"No regression against {b.reference}."  # fmt: skip
        head += [verdict, "", "Answer approve = true to promote, false to reject; the note is recorded.", ""]
        text = "\n".join(head) + "\n" + b.markdown
    else:
        text = "\n".join(head)
    return text[:limit]


def slack_message(r: EvaluationResult) -> tuple[str, list[dict]]:
    icon = {"promoted": ":white_check_mark:", "rolled_back": ":rotating_light:", "failed": ":x:"}.get(
        r.status, ":no_entry:"
    )
    title = f"Model {r.candidate} on {r.endpoint}: {r.status.replace('_', ' ').upper()}"
    lines = [r.detail]
    if r.decision is not None:
        lines.append(f"Decision: {'approved' if r.decision.approved else 'rejected'} ({r.decision.by})"
                     + (f": {r.decision.note}" if r.decision.note else ""))  # fmt: skip
    if r.benchmark is not None:
        m, ref = r.benchmark.metrics, r.benchmark.reference_metrics
        ttft, ttft0 = m.get("ttft_p50_s"), ref.get("ttft_p50_s")
        if ttft is not None and ttft0:
            lines.append(f"TTFT p50 {ttft * 1000:.0f} ms (reference {ttft0 * 1000:.0f} ms); "
                         f"{len(r.benchmark.regressions)} regression(s)")  # fmt: skip
    if r.switch is not None:
        lines.append(f"Switch {r.switch.seconds:.1f} s, answering: {r.switch.ok}")
    if r.rollback is not None:
        lines.append(f"Automatic rollback to {r.rollback.to_version}: {'ok' if r.rollback.ok else 'FAILED'} "
                     f"in {r.rollback.seconds:.1f} s")  # fmt: skip
    text = redact(f"{icon} {title}")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": redact("\n".join(x for x in lines if x))[:2900]},
        },
    ]
    return text, blocks


def staging_for(cfg: Config, m: Managed) -> EndpointConfig:
    from llm_upkeep.models.endpoints import staging_endpoint

    s = staging_endpoint(cfg, m)
    if s is None:
        raise ConfigError(
            "no staging endpoint: set [models].staging_endpoint or staging = true on an endpoint",
            file=cfg.source, key="models.staging_endpoint",
        )  # fmt: skip
    if s.name == m.name:
        raise ConfigError("the staging endpoint cannot be the endpoint being promoted", file=cfg.source,
                          key="models.staging_endpoint")  # fmt: skip
    return s


__all__ = [
    "CandidateBenchmark", "CandidateCheck", "Decision", "EvaluationResult", "PullSummary", "acquire_file_candidate",
    "approval_description", "auto_decision", "benchmark_candidate", "load_decision", "managed_endpoints",
    "pull_candidate", "save_decision", "slack_message", "staging_for", "verify_candidate",
]  # fmt: skip
