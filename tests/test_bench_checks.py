"""Answer checks, one by one, and similarity through the server's embeddings or the lexical fallback."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_upkeep.bench.checks import (
    extract_json,
    extract_number,
    grade_answer,
    lexical_similarity,
    normalize_text,
)
from llm_upkeep.bench.grading import grade_run
from llm_upkeep.bench.runner import RunSettings, run_suite
from llm_upkeep.bench.suites import parse_suite
from llm_upkeep.clients import make_http_client
from tests.llm_fixtures import endpoint_for


def one(check: dict, answer: str):
    s = parse_suite({"name": "t", "prompts": [{"id": "a", "prompt": "q", "checks": [check]}]})
    return grade_answer(s.prompts[0], answer).outcomes[0]


def test_normalize_and_exact():
    assert normalize_text('  "**Billing.**"  ') == "billing"
    assert normalize_text("Ｂｉｌｌｉｎｇ!") == "billing"  # NFKC folds full-width letters
    assert one({"type": "exact", "value": "billing"}, "Billing.").passed
    assert one({"type": "exact", "value": ["billing", "payments"]}, "`payments`").passed
    o = one({"type": "exact", "value": "billing"}, "The category is billing.")
    assert o.passed is False and "want ['billing']" in o.detail


def test_contains_modes_case_and_negate():
    assert one({"type": "contains", "value": ["30 days", "notice"]}, "Thirty: 30  DAYS written Notice").passed
    o = one({"type": "contains", "value": ["30 days", "notice"]}, "30 days")
    assert o.passed is False and "notice" in o.detail
    assert one({"type": "contains", "value": ["x", "notice"], "mode": "any"}, "NOTICE").passed
    assert not one({"type": "contains", "value": "Notice", "case_sensitive": True}, "notice").passed
    assert not one({"type": "contains", "value": "sorry", "negate": True}, "I am Sorry").passed
    assert one({"type": "contains", "value": "sorry", "negate": True}, "Done.").passed


def test_regex_flags_and_negate():
    assert one({"type": "regex", "pattern": r"\b(60|sixty)\b", "flags": "i"}, "SIXTY days").passed
    assert not one({"type": "regex", "pattern": r"\b(60|sixty)\b"}, "SIXTY days").passed
    words_81 = " ".join(["w"] * 81)
    assert not one({"type": "regex", "pattern": r"^\s*(?:\S+\s+){80,}", "negate": True}, words_81).passed
    assert one({"type": "regex", "pattern": r"^\s*(?:\S+\s+){80,}", "negate": True}, "short answer").passed


def test_json_extraction_and_schema():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure!\n```json\n["2026-03-03"]\n```\nDone') == ["2026-03-03"]
    assert extract_json('Here: {"category": "billing"} hope it helps {') == {"category": "billing"}
    with pytest.raises(ValueError):
        extract_json("no json here")
    schema = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["billing"]}}}
    assert one({"type": "json", "schema": schema}, 'Answer: {"category": "billing"}').passed
    o = one({"type": "json", "schema": schema}, '{"category": "fun"}')
    assert o.passed is False and "at category" in o.detail
    assert not one({"type": "json"}, "not json").passed


def test_numeric_tolerance_pattern_and_separators():
    assert extract_number("Total: 1,200.50 EUR") == 1200.5
    assert one({"type": "numeric", "value": 4}, "There are 4 dates.").passed
    assert not one({"type": "numeric", "value": 4}, "There are 5 dates.").passed
    assert one({"type": "numeric", "value": 100, "rel_tolerance": 0.05}, "about 104").passed
    assert one({"type": "numeric", "value": 45, "pattern": r"term:\s*(\d+)"}, "7 days... term: 45").passed
    o = one({"type": "numeric", "value": 45, "pattern": r"term:\s*(\d+)"}, "45 days")
    assert o.passed is False and "did not match" in o.detail


def test_lexical_similarity_is_bounded_symmetric_and_order_aware():
    a = "Either party may terminate on 60 days notice"
    assert lexical_similarity(a, a) == pytest.approx(1.0)
    assert lexical_similarity(a, a.upper() + "!") == pytest.approx(1.0)
    assert lexical_similarity(a, "Bananas are yellow") == 0.0
    shuffled = "notice days 60 on terminate may party either"
    assert 0 < lexical_similarity(a, shuffled) < 0.8  # same words, lost order: bigrams differ
    assert lexical_similarity(a, shuffled) == pytest.approx(lexical_similarity(shuffled, a))


SIM_SUITE = {
    "name": "sim",
    "prompts": [
        {"id": "same", "prompt": "alpha question", "checks": [{"type": "similarity", "min": 0.9}]},
        {"id": "moved", "prompt": "beta question", "checks": [{"type": "similarity", "min": 0.9}]},
    ],
}


async def _graded(endpoint, suite, reference):
    async with make_http_client() as http:
        run = await run_suite(endpoint, suite, RunSettings(repeats=1, warmup=0, max_tokens=50), http)
        q = await grade_run(run, suite, reference=reference, endpoint=endpoint, http=http)
    return run, q


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_similarity_uses_the_servers_embeddings(sim_factory, api):
    answers = {"alpha": "The payment is due in thirty days", "beta": "The payment is due in thirty days"}
    sim = sim_factory(ttft_s=0.001, itl_s=0.0, answers=answers)
    suite = parse_suite(SIM_SUITE)
    ref = {"same": "The payment is due in thirty days", "moved": "Delivery happens next Tuesday morning"}
    run, q = asyncio.run(_graded(endpoint_for(sim, api=api), suite, ref))
    assert run.similarity_method == "embeddings"
    by = {c["prompt"]: c for c in q["checks"]}
    assert by["same"]["pass_rate"] == 1.0 and by["same"]["score_mean"] == pytest.approx(1.0)
    assert by["moved"]["pass_rate"] == 0.0 and by["moved"]["method"] == "embeddings"
    paths = {r["path"] for r in sim.requests}
    assert ("/api/embed" if api == "ollama" else "/v1/embeddings") in paths


class _NoEmbeddings(BaseHTTPRequestHandler):
    """An OpenAI-style server without /v1/embeddings: real 404s (the lexical fallback's trigger)."""

    def log_message(self, *a):
        return

    def do_POST(self):
        body = b'{"detail": "Not Found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_similarity_falls_back_to_lexical_when_the_server_has_no_embeddings(sim_factory):
    from llm_upkeep.bench.grading import embed_texts
    from llm_upkeep.config import EndpointConfig

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _NoEmbeddings)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ep = EndpointConfig(
            name="x", api="openai", url=f"http://127.0.0.1:{srv.server_address[1]}", model="m"
        )

        async def go():
            async with make_http_client() as http:
                return await embed_texts(ep, http, ["a", "b"])

        vecs, why = asyncio.run(go())
        assert vecs is None and "no embeddings endpoint" in why
    finally:
        srv.shutdown()
        srv.server_close()

    # A whole grading pass with no endpoint to ask: lexical, and the method says why.
    sim = sim_factory(
        ttft_s=0.001, itl_s=0.0, answers={"alpha": "due in thirty days", "beta": "due in thirty days"}
    )
    suite = parse_suite(SIM_SUITE)

    async def graded():
        async with make_http_client() as http:
            run = await run_suite(endpoint_for(sim), suite, RunSettings(repeats=1, warmup=0), http)
            return run, await grade_run(run, suite, reference={"same": "Due in thirty days.", "moved": "no"})

    run, q = asyncio.run(graded())
    assert run.similarity_method.startswith("lexical")
    by = {c["prompt"]: c for c in q["checks"]}
    assert by["same"]["pass_rate"] == 1.0 and by["same"]["method"] == "lexical"
    assert by["moved"]["pass_rate"] == 0.0


def test_similarity_without_reference_is_not_evaluated(sim_factory):
    sim = sim_factory(ttft_s=0.001, itl_s=0.0)
    suite = parse_suite(SIM_SUITE)
    run, q = asyncio.run(_graded(endpoint_for(sim), suite, None))
    assert q["pass_rate"] is None and q["answers"] == 0
    assert all(c["evaluated"] == 0 and c["detail"] == "no baseline answer" for c in q["checks"])
