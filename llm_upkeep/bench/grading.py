"""Grade a run's answers: static checks, then similarity to the reference (baseline) answers.

Why separate from the runner: which answers are the reference is the caller's choice (the
pinned baseline weekly; the current production model when the lifecycle flow tries a candidate).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from llm_upkeep.bench.checks import (
    CheckOutcome,
    cosine,
    grade_answer,
    lexical_similarity,
    similarity_outcome,
)
from llm_upkeep.bench.runner import RunResult
from llm_upkeep.bench.suites import SimilarityCheck, Suite
from llm_upkeep.clients import LLMError, client_for
from llm_upkeep.config import EndpointConfig

EMBED_BATCH = 32
EMBED_TIMEOUT_S = 60.0


def reference_answers(run: RunResult) -> dict[str, str]:
    """The first complete answer to each prompt (temperature 0: the repeats should agree)."""
    out: dict[str, str] = {}
    for r in sorted(run.measured(), key=lambda r: r.seq):
        if r.ok and r.prompt_id not in out:
            out[r.prompt_id] = r.answer
    return out


async def embed_texts(
    endpoint: EndpointConfig, http: httpx.AsyncClient, texts: list[str], model: str | None = None
) -> tuple[dict[str, list[float]] | None, str]:
    """Embeddings of texts from the server, or (None, why) when it has no usable embeddings."""
    ep = endpoint.model_copy(update={"model": model}) if model else endpoint
    client = client_for(ep, http)
    vecs: dict[str, list[float]] = {}
    try:
        async with asyncio.timeout(EMBED_TIMEOUT_S):
            for i in range(0, len(texts), EMBED_BATCH):
                batch = texts[i : i + EMBED_BATCH]
                got = await client.embed(batch)
                if got is None:
                    return None, "the server has no embeddings endpoint"
                if len(got) != len(batch) or any(not v for v in got):
                    return None, "the embeddings endpoint answered with the wrong number of vectors"
                vecs.update(zip(batch, got, strict=True))
    except LLMError as exc:
        return None, f"embeddings failed: {exc.kind}"
    except TimeoutError:
        return None, f"embeddings took longer than {EMBED_TIMEOUT_S:g} s"
    dims = {len(v) for v in vecs.values()}
    if len(dims) > 1:
        return None, "embeddings of different lengths"
    return vecs, "embeddings"


async def grade_run(
    run: RunResult,
    suite: Suite,
    *,
    reference: dict[str, str] | None = None,
    endpoint: EndpointConfig | None = None,
    http: httpx.AsyncClient | None = None,
    embedding_model: str | None = None,
) -> dict[str, Any]:
    """Fill every measured answer's check outcomes in place and return the quality summary.

    Similarity checks are evaluated only for prompts that have a reference answer; they use the
    endpoint's embeddings when it has them (endpoint and http given), else lexical similarity.
    """
    pending: list[tuple[Any, int, SimilarityCheck, str, str]] = []
    for rec in run.measured():
        if not rec.ok:
            rec.checks = []
            continue
        p = suite.prompt(rec.prompt_id)
        grade = grade_answer(p, rec.answer)
        for i, (check, name) in enumerate(zip(p.checks, p.check_names(), strict=True)):
            if isinstance(check, SimilarityCheck) and reference and rec.prompt_id in reference:
                pending.append((rec, i, check, name, reference[rec.prompt_id]))
        rec.checks = [o.to_dict() for o in grade.outcomes]

    if pending:
        vecs, why = None, "no endpoint to ask for embeddings"
        if endpoint is not None and http is not None:
            texts = sorted({ref for *_, ref in pending} | {r.answer for r, *_ in pending})
            vecs, why = await embed_texts(endpoint, http, texts, embedding_model)
        run.similarity_method = "embeddings" if vecs else f"lexical ({why})"
        for rec, i, check, name, ref in pending:
            if vecs:
                score, method = cosine(vecs[rec.answer], vecs[ref]), "embeddings"
            else:
                score, method = lexical_similarity(rec.answer, ref), "lexical"
            rec.checks[i] = similarity_outcome(check, name, score, method).to_dict()
    return quality_summary(run)


def quality_summary(run: RunResult) -> dict[str, Any]:
    """Pass rates over answers, per check and per prompt, from the outcomes stored on the run."""
    answers = 0
    answers_passed = 0
    evaluated = 0
    passed = 0
    per_check: dict[tuple[str, str], dict[str, Any]] = {}
    per_prompt: dict[str, dict[str, Any]] = {}
    for rec in run.measured():
        if not rec.ok:
            continue
        outs = [CheckOutcome(**c) for c in rec.checks]
        ev = [o for o in outs if o.passed is not None]
        pp = per_prompt.setdefault(
            rec.prompt_id,
            {"prompt": rec.prompt_id, "job": rec.job, "answers": 0, "passed": 0, "pass_rate": None},
        )
        for o in outs:
            row = per_check.setdefault(
                (rec.prompt_id, o.name),
                {"prompt": rec.prompt_id, "job": rec.job, "check": o.name, "type": o.type, "evaluated": 0,
                 "passed": 0, "pass_rate": None, "detail": "", "method": o.method, "scores": []},
            )  # fmt: skip
            if o.passed is None:
                if not row["detail"]:
                    row["detail"] = o.detail
                continue
            row["evaluated"] += 1
            row["passed"] += int(bool(o.passed))
            row["method"] = o.method or row["method"]
            if o.score is not None:
                row["scores"].append(o.score)
            if not o.passed and (not row["detail"] or row["detail"] == "no baseline answer"):
                row["detail"] = o.detail
        if not ev:
            continue
        ok = all(o.passed for o in ev)
        answers += 1
        answers_passed += int(ok)
        evaluated += len(ev)
        passed += sum(1 for o in ev if o.passed)
        pp["answers"] += 1
        pp["passed"] += int(ok)
    for pp in per_prompt.values():
        pp["pass_rate"] = pp["passed"] / pp["answers"] if pp["answers"] else None
    checks = []
    for row in per_check.values():
        row["pass_rate"] = row["passed"] / row["evaluated"] if row["evaluated"] else None
        scores = row.pop("scores")
        row["score_mean"] = sum(scores) / len(scores) if scores else None
        if row["pass_rate"] == 1.0:
            row["detail"] = ""
        checks.append(row)
    by_type: dict[str, dict[str, Any]] = {}
    for row in checks:
        t = by_type.setdefault(
            row["type"], {"type": row["type"], "evaluated": 0, "passed": 0, "pass_rate": None}
        )
        t["evaluated"] += row["evaluated"]
        t["passed"] += row["passed"]
    for t in by_type.values():
        t["pass_rate"] = t["passed"] / t["evaluated"] if t["evaluated"] else None
    return {
        "pass_rate": answers_passed / answers if answers else None,
        "answers": answers,
        "answers_passed": answers_passed,
        "check_pass_rate": passed / evaluated if evaluated else None,
        "checks": checks,
        "prompts": list(per_prompt.values()),
        "by_type": list(by_type.values()),
        "similarity_method": run.similarity_method,
    }
