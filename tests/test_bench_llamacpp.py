"""The benchmark against the real llama.cpp server (random tiny model): both OpenAI APIs run,
tokens flow, the quality table exists and says plainly that the answers fail."""

from __future__ import annotations

import asyncio

from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.bench.report import prompt_rows, render_markdown
from llm_upkeep.bench.result import BenchmarkResult, judge_run
from llm_upkeep.bench.runner import RunSettings, run_suite
from llm_upkeep.bench.suites import load_suite
from llm_upkeep.clients import make_http_client


def test_default_suite_through_chat_and_completions_on_real_llamacpp(llamacpp_factory, state_dir):
    server = llamacpp_factory(n_ctx=2048)  # the default suite's prompts need more than 512 tokens here
    ep = server.endpoint()
    suite = load_suite()
    cfg = BenchmarkConfig(repeats=1, warmup=1, apis=["chat", "completions"])

    async def bench(api):
        async with make_http_client() as http:
            st = RunSettings.from_config(cfg, api, max_tokens_cap=24)
            run = await run_suite(ep, suite, st, http)
            return await judge_run(run, suite, cfg, state_dir, endpoint=ep, http=http)

    results = [asyncio.run(bench(api)) for api in cfg.apis]
    for e in results:
        m = e.metrics
        assert e.detail["ok"] == len(suite.prompts) and m["error_rate"] == 0, e.notes
        assert m["output_tokens_per_s"] > 0 and m["requests_per_s"] > 0
        assert m["ttft_p50_s"] > 0 and m["itl_p50_s"] > 0 and m["tpot_p50_s"] > 0
        assert e.detail["tokens_source"] == "chunks"  # llama-cpp-python streams no usage
        # ... and no `timings` either: no server TTFT is recorded, never a made-up 0.
        assert all(r.server_ttft_s is None for r in e.run.measured())
        assert e.run.identity.digest_source == "openai-models-entry"
        q = e.quality
        assert q["answers"] == len(suite.prompts) and q["checks"]
        assert q["pass_rate"] < 0.5  # random weights do not do these jobs
        assert any(c["pass_rate"] == 0 and c["detail"] for c in q["checks"])
        rows = prompt_rows(e)
        assert len(rows) == len(suite.prompts) and all(r["answer"] for r in rows)
    assert [e.target for e in results] == ["llamacpp", "llamacpp/completions"]

    md = render_markdown(BenchmarkResult(endpoints=results, suite={"name": suite.name, "hash": suite.hash,
                                                                    "prompts": len(suite.prompts)}))  # fmt: skip
    assert "**Quality: FAILING" in md or "**Quality: mostly failing" in md
    assert md.count("| contract-termination |") == 2

    # A rerun is judged against the pinned first run; llama.cpp has no embeddings here, so the
    # similarity checks fall back to lexical, and temperature 0 gives the same answers again.
    again = asyncio.run(bench("chat"))
    assert again.comparison is not None and again.baseline["reason"] == "first-run"
    assert again.run.similarity_method.startswith("lexical (embeddings failed")
    assert again.comparison.drift["answers_changed"] == 0
    assert not [r for r in again.regressions if r["kind"] in ("quality", "drift", "errors")]
