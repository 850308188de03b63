"""Regression verdicts: a slowed-down server is a significant regression, an unchanged one never
raises a false alarm, quality and drift regressions, and the reports that carry the verdict."""

from __future__ import annotations

import asyncio

import pytest

from llm_upkeep.bench.compare import compare_runs
from llm_upkeep.bench.config import BenchmarkConfig, RegressionThresholds
from llm_upkeep.bench.grading import grade_run, reference_answers
from llm_upkeep.bench.report import plot_latency, prompt_rows, render_markdown, slack_message
from llm_upkeep.bench.result import BenchmarkResult, judge_run
from llm_upkeep.bench.runner import RunSettings, run_suite
from llm_upkeep.bench.stats import bootstrap_median_change_ci, mann_whitney_worse
from llm_upkeep.bench.suites import load_suite
from llm_upkeep.clients import make_http_client
from tests.bench_fixtures import GOOD_ANSWERS, tiny_suite
from tests.llm_fixtures import endpoint_for

# Fast reruns: 3 prompts x 3 repeats, 6 tokens, TTFT 200 ms, 10 ms between tokens (20 % is far above
# the jitter of a busy 2-core machine).
FAST = RunSettings(profile="concurrent", concurrency=3, repeats=3, warmup=1, ramp_up_s=0.05)


async def _graded_run(endpoint, suite, settings, reference=None):
    async with make_http_client() as http:
        run = await run_suite(endpoint, suite, settings, http)
        await grade_run(run, suite, reference=reference, endpoint=endpoint, http=http)
    return run


def run_graded(endpoint, suite, settings=FAST, reference=None):
    return asyncio.run(_graded_run(endpoint, suite, settings, reference))


def test_doubled_latency_is_a_significant_regression(sim_factory):
    # 16 tokens: doubling 10 ms gaps adds 150 ms of decode, well above a busy host's own lag.
    sim = sim_factory(ttft_s=0.2, itl_s=0.01, tokens=16)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(3, max_tokens=16)
    st = FAST.model_copy(update={"repeats": 5})  # 15 samples a side: robust to a busy machine's stalls
    base = run_graded(ep, suite, st)
    sim.behavior.slowdown = 2.0  # TTFT (and ITL) doubled
    slow = run_graded(ep, suite, st, reference=reference_answers(base))
    comp = compare_runs(base, slow, RegressionThresholds())
    by = {d.metric: d for d in comp.metrics}
    ttft = by["ttft_p50_s"]
    assert ttft.regression and ttft.significant and ttft.p_value < 0.001
    assert ttft.delta_pct == pytest.approx(100, abs=15)
    assert ttft.ci_low_pct > 20  # the bootstrap CI excludes "no change" by far
    assert by["decode_tokens_per_s_p50"].regression and by["tpot_p50_s"].regression
    kinds = {(r["kind"], r["metric"]) for r in comp.regressions}
    assert ("speed", "ttft_p50_s") in kinds and ("speed", "e2e_p50_s") in kinds
    assert not any(r["kind"] in ("quality", "drift") for r in comp.regressions)  # same answers
    assert base.client_lag_s["n"] > 0 and slow.client_lag_s["p99"] is not None

    # The same change on a benchmark host that was itself lagging by a second is not pinned on the
    # server: it is reported as within the host's lag, with a note.
    starved = slow.model_copy(update={"client_lag_s": {**slow.client_lag_s, "p99": 1.0}})
    comp2 = compare_runs(base, starved, RegressionThresholds())
    t2 = next(d for d in comp2.metrics if d.metric == "ttft_p50_s")
    assert t2.within_client_lag and not t2.regression and t2.significant
    assert not [r for r in comp2.regressions if r["kind"] == "speed"]
    assert "benchmark host" in comp2.notes[0]


def test_unchanged_server_is_never_flagged_in_ten_reruns(sim_factory):
    sim = sim_factory(ttft_s=0.2, itl_s=0.01, tokens=6)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(3, max_tokens=6)
    base = run_graded(ep, suite)
    refs = reference_answers(base)
    flagged = []
    for i in range(10):
        again = run_graded(ep, suite, reference=refs)
        comp = compare_runs(base, again, RegressionThresholds())
        if comp.regressions:
            flagged.append((i, comp.regressions))
        assert comp.drift["answers_changed"] == 0 and comp.drift["similarity_fail_rate"] == 0.0
    assert not flagged


def test_quality_drop_and_answer_drift_are_regressions(sim_factory):
    suite = load_suite()
    sim = sim_factory(ttft_s=0.002, itl_s=0.0, tokens=5, answers=dict(GOOD_ANSWERS))
    ep = endpoint_for(sim)
    st = RunSettings(repeats=1, warmup=0, max_tokens=200)
    base = run_graded(ep, suite, st)
    assert base.model_copy() and _pass_rate(base) == 1.0
    # A "model update" that breaks the date extraction and rewrites a summary.
    sim.behavior.answers["Hi Dana"] = "The dates are March 3, February 20 and March 17."
    sim.behavior.answers["Dear tenant"] = "Dates: 30 November 2026, 1 January 2027, 31 December 2027."
    sim.behavior.answers["Clause 12.2"] = (
        "Termination needs sixty days notice, or thirty days to cure a breach; after that the buyer owes "
        "nothing more and may walk away at any point without paying any fee at all."
    )
    now = run_graded(ep, suite, st, reference=reference_answers(base))
    comp = compare_runs(base, now, RegressionThresholds())
    q = next(r for r in comp.regressions if r["kind"] == "quality")
    assert q["baseline"] == 1.0 and q["current"] < 0.9
    # The rewritten summary still passes its own checks: only the drift check catches it.
    assert set(q["prompts"]) == {"email-project-dates", "email-lease-dates"}
    drift = next(r for r in comp.regressions if r["kind"] == "drift")
    assert drift["prompts"] == ["contract-termination"]
    assert comp.drift["answers_changed"] == 3 and comp.drift["method"] == "embeddings"
    rows = {r["prompt"]: r for r in comp.prompts}
    assert (
        rows["email-project-dates"]["pass_rate_baseline"] == 1.0
        and rows["email-project-dates"]["pass_rate"] == 0.0
    )


def _pass_rate(run):
    from llm_upkeep.bench.grading import quality_summary

    return quality_summary(run)["pass_rate"]


def test_error_rate_increase_is_a_regression(sim_factory):
    sim = sim_factory(ttft_s=0.002, itl_s=0.0, tokens=3)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(2)
    base = run_graded(ep, suite, RunSettings(repeats=2, warmup=0))
    sim.behavior.truncate_after = 1
    sim.set_fault("truncated")
    bad = run_graded(ep, suite, RunSettings(repeats=2, warmup=0))
    comp = compare_runs(base, bad, RegressionThresholds())
    err = next(r for r in comp.regressions if r["kind"] == "errors")
    assert err["current"] == 1.0 and "truncated" in err["detail"]


def test_statistics_directions_and_small_samples():
    lo = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02]
    hi = [x * 2 for x in lo]
    assert mann_whitney_worse(lo, hi, higher_is_worse=True) < 0.01
    assert mann_whitney_worse(lo, hi, higher_is_worse=False) > 0.9
    assert mann_whitney_worse(lo, lo, higher_is_worse=True) > 0.3
    assert mann_whitney_worse([1, 2], [3, 4], True) is None
    assert mann_whitney_worse([1.0] * 5, [1.0] * 5, True) == 1.0
    ci = bootstrap_median_change_ci(lo, hi)
    assert 50 < ci[0] <= 100 <= ci[1] < 150


def test_judge_pins_first_run_then_reports_regression_with_markdown_plot_and_slack(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.2, itl_s=0.003, tokens=6)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(3, max_tokens=6)
    cfg = BenchmarkConfig(profile="concurrent", concurrency=3, repeats=3, warmup=1, ramp_up_s=0.05)

    async def judged():
        async with make_http_client() as http:
            run = await run_suite(ep, suite, RunSettings.from_config(cfg), http)
            return await judge_run(run, suite, cfg, state_dir, endpoint=ep, http=http)

    first = asyncio.run(judged())
    assert first.status == "ok" and first.comparison is None
    assert first.baseline["pinned_now"] and first.baseline["reason"] == "first-run"
    sim.behavior.slowdown = 2.0
    second = asyncio.run(judged())
    assert second.status == "regression" and second.baseline["run_id"] == first.run_id
    assert not second.baseline["pinned_now"]  # a regressed run never replaces the baseline by itself

    second.plot_path = str(plot_latency(second.run, second.baseline_run, state_dir / "plot.png"))
    assert (state_dir / "plot.png").read_bytes()[:4] == b"\x89PNG"
    result = BenchmarkResult(status="regression", endpoints=[second],
                             suite={"name": suite.name, "hash": suite.hash, "prompts": 3})  # fmt: skip
    md = render_markdown(result)
    assert "## sim: REGRESSION" in md and "| ttft_p50_s |" in md and "**REGRESSION**" in md
    assert (state_dir / "plot.png").resolve().as_uri() in md
    assert "](data:image/png;base64,iVBOR" in md  # inlined too: the Prefect UI cannot open file://
    rows = prompt_rows(second)
    assert {r["prompt"] for r in rows} == {"p0", "p1", "p2"}
    assert all(r["ttft_p50_s"] > r["ttft_p50_s_baseline"] * 1.5 for r in rows)
    text, blocks = slack_message(result)
    assert (
        "ttft_p50_s" in text
        and "```" in blocks[1]["text"]["text"]
        and "ttft_p50_s" in blocks[1]["text"]["text"]
    )
    j = result.to_json()
    assert j["endpoints"][0]["baseline"]["metrics"]["ttft_p50_s"]["regression"] is True


def test_judge_against_a_given_run_records_nothing(sim_factory, state_dir):
    """The model-lifecycle use: a candidate judged against the production run, nothing pinned."""
    prod = sim_factory(ttft_s=0.05, itl_s=0.003, tokens=6)
    cand = sim_factory(ttft_s=0.05, itl_s=0.003, tokens=6, digest="c" * 64)
    suite = tiny_suite(3, max_tokens=6)
    cfg = BenchmarkConfig(profile="concurrent", concurrency=3, repeats=3, warmup=1, ramp_up_s=0.05)

    async def go():
        async with make_http_client() as http:
            st = RunSettings.from_config(cfg)
            base = await run_suite(endpoint_for(prod), suite, st, http)
            await grade_run(base, suite)
            now = await run_suite(endpoint_for(cand, name="staging"), suite, st, http)
            return await judge_run(now, suite, cfg, state_dir, baseline_run=base, record=False,
                                   endpoint=endpoint_for(cand), http=http)  # fmt: skip

    e = asyncio.run(go())
    assert e.comparison is not None and e.comparison.match == "model_changed"
    assert e.status == "ok" and e.baseline["reason"] == "given"
    assert e.quality["pass_rate"] == 1.0 and e.comparison.drift["similarity_fail_rate"] == 0.0
    assert not any(state_dir.iterdir())
