"""The streaming probe against the simulator: timing accuracy, every fault, fan-out."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from llm_upkeep.clients import make_http_client
from llm_upkeep.probe import ProbeResult, probe_endpoint
from tests.llm_fixtures import endpoint_for
from tests.timing import on_schedule


def run_probe(endpoint, **kw) -> tuple[ProbeResult, float]:
    async def go():
        async with make_http_client() as http:
            t = time.perf_counter()
            r = await probe_endpoint(endpoint, http, **kw)
            return r, time.perf_counter() - t

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("api", "chat"), [("ollama", True), ("ollama", False), ("openai", True), ("openai", False)]
)
def test_probe_measures_ttft_and_e2e_like_the_server_paces_them(sim_factory, api, chat):
    sim = sim_factory(ttft_s=0.30, itl_s=0.02, tokens=60)
    r, _ = run_probe(endpoint_for(sim, api=api), max_tokens=100, chat=chat)
    assert r.ok, r.error_detail
    assert r.error_kind is None
    # total time (1.48 s) is what the playbook calls TTFT; the windows below cannot confuse the two
    assert on_schedule(r.ttft_s, 0.30, late=0.3)
    assert on_schedule(r.e2e_s, 0.30 + 59 * 0.02, late=0.4)
    assert r.output_tokens == 60
    assert r.tokens_source == ("eval_count" if api == "ollama" else "usage")
    assert len(r.itl_s) == 59
    assert on_schedule(statistics.median(r.itl_s), 0.02, late=0.01, early=0.005)
    assert r.decode_tokens_per_s == pytest.approx(59 / (r.e2e_s - r.ttft_s))
    assert 35 <= r.decode_tokens_per_s <= 80  # the formula is pinned just above
    assert r.text.startswith("The quick brown fox")
    if api == "ollama":
        assert r.server["eval_count"] == 60
        assert r.server["done_reason"] == "stop"
        assert r.server["eval_duration_s"] == pytest.approx(60 * 0.02, abs=0.05)
        assert r.ps and r.ps[0]["size_vram"] == r.ps[0]["size"]
    else:
        assert r.ps is None


def test_probe_counts_tokens_from_chunks_when_the_server_sends_no_usage(sim_factory):
    sim = sim_factory(ttft_s=0.05, itl_s=0.005, tokens=12, usage=False)
    r, _ = run_probe(endpoint_for(sim, api="openai"), max_tokens=50)
    assert r.ok
    assert (r.output_tokens, r.tokens_source) == (12, "chunks")


def test_probe_honours_max_tokens(sim_factory):
    sim = sim_factory(ttft_s=0.02, itl_s=0.002, tokens=60)
    r, _ = run_probe(endpoint_for(sim), max_tokens=16)
    assert r.ok and r.output_tokens == 16
    assert r.server["done_reason"] == "length"


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_role_only_chunk_does_not_count_as_first_token(sim_factory, api):
    sim = sim_factory(ttft_s=0.25, itl_s=0.01, tokens=5, role_chunk=True)
    r, _ = run_probe(endpoint_for(sim, api=api), max_tokens=50)
    assert r.ok
    # The role chunk arrives at once; counting it would give a TTFT near 0.
    assert on_schedule(r.ttft_s, 0.25, late=0.2)
    assert sim.requests[-2 if api == "ollama" else -1]["path"] in ("/api/chat", "/v1/chat/completions")


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_thinking_chunks_count_as_first_token_but_not_as_text(sim_factory, api):
    sim = sim_factory(ttft_s=0.20, itl_s=0.03, tokens=5, thinking=True, thinking_tokens=8)
    r, _ = run_probe(endpoint_for(sim, api=api), max_tokens=50)
    assert r.ok
    # The first content token comes 8 x 0.03 s after the first thinking token (at 0.44 s).
    assert on_schedule(r.ttft_s, 0.20, late=0.2)
    assert r.text == "The quick brown fox jumps"
    assert r.output_tokens == 13
    assert len(r.itl_s) == 12


@pytest.mark.parametrize("api", ["ollama", "openai"])
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("refused", "connection_refused"),
        ("hang", "timeout"),
        ("http_500", "http_5xx"),
        ("oom", "oom"),
        ("malformed", "malformed"),
        ("truncated", "truncated"),
    ],
)
def test_each_fault_gives_its_error_kind(sim_factory, api, fault, kind):
    sim = sim_factory(ttft_s=0.05, itl_s=0.01, tokens=20)
    sim.set_fault(fault)
    ep = endpoint_for(sim, api=api, timeout_s=1.0, read_timeout_s=5.0, connect_timeout_s=1.0)
    r, elapsed = run_probe(ep, max_tokens=50)
    assert not r.ok
    assert r.error_kind == kind, r.error_detail
    assert r.error_detail and "Traceback" not in r.error_detail
    assert len(r.error_detail) <= 300
    assert r.e2e_s is None and r.decode_tokens_per_s is None
    if fault == "hang":
        # The total deadline (1 s) fires although the read timeout (5 s) would not.
        assert 0.9 <= elapsed < 4.0
    if fault == "truncated":
        assert r.ttft_s is not None and r.text == "The quick brown"
    if fault == "oom":
        assert "memory" in r.error_detail.lower()


def test_hang_is_cut_by_the_read_timeout_when_it_is_shorter(sim_factory):
    sim = sim_factory()
    sim.set_fault("hang")
    r, elapsed = run_probe(endpoint_for(sim, timeout_s=10.0, read_timeout_s=0.4))
    assert r.error_kind == "timeout"
    assert elapsed < 5.0  # the total deadline would fire at 10 s


def test_refused_endpoint_comes_back_after_the_fault_clears(sim_factory):
    sim = sim_factory(ttft_s=0.02, itl_s=0.002, tokens=5)
    ep = endpoint_for(sim, api="openai")
    sim.set_fault("refused")
    assert run_probe(ep)[0].error_kind == "connection_refused"
    sim.set_fault(None)
    r, _ = run_probe(ep)
    assert r.ok and r.output_tokens == 5


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_gibberish_is_ok_with_garbage_text(sim_factory, api):
    sim = sim_factory(ttft_s=0.02, itl_s=0.002, tokens=30, fault="gibberish")
    r, _ = run_probe(endpoint_for(sim, api=api), max_tokens=50)
    assert r.ok and r.error_kind is None
    assert r.output_tokens == 30
    assert any(ord(ch) > 127 for ch in r.text)
    assert "quick brown" not in r.text


def test_slow_first_token_is_ok_with_a_large_ttft(sim_factory):
    sim = sim_factory(ttft_s=0.05, itl_s=0.01, tokens=5, fault="slow_first_token", slow_first_token_s=0.8)
    r, _ = run_probe(endpoint_for(sim, api="openai"), max_tokens=50)
    assert r.ok
    assert on_schedule(r.ttft_s, 0.8, late=0.3)


def test_slow_first_token_times_out_when_the_deadline_is_shorter(sim_factory):
    sim = sim_factory(fault="slow_first_token", slow_first_token_s=5.0)
    r, elapsed = run_probe(endpoint_for(sim, timeout_s=0.5), max_tokens=50)
    assert r.error_kind == "timeout"
    assert r.ttft_s is None
    assert elapsed < 3.0  # the server would answer at 5 s


def test_total_deadline_bounds_a_server_that_keeps_trickling(sim_factory):
    # Each gap (0.25 s) is far below the read timeout; only the total deadline can stop it.
    sim = sim_factory(ttft_s=0.05, itl_s=0.25, tokens=40)
    r, elapsed = run_probe(endpoint_for(sim, api="openai", timeout_s=1.0, read_timeout_s=5.0), max_tokens=50)
    assert r.error_kind == "timeout"
    assert r.ttft_s is not None and r.text  # partial evidence is kept
    assert elapsed < 4.0  # the whole trickle takes 9.8 s


def test_ollama_probe_reports_cpu_offload_and_cold_load(sim_factory):
    sim = sim_factory(ttft_s=0.05, itl_s=0.005, tokens=5, vram_fraction=0.5, load_duration_s=0.2)
    r, _ = run_probe(endpoint_for(sim), max_tokens=50)
    assert r.ok
    assert r.server["load_duration_s"] == pytest.approx(0.2, abs=0.001)
    assert on_schedule(r.ttft_s, 0.25, late=0.2)  # a cold load delays the first token (else 0.05 s)
    assert r.ps is not None and len(r.ps) == 1
    assert r.ps[0]["size_vram"] == r.ps[0]["size"] // 2


def test_ollama_probe_tolerates_a_failing_ps(sim_factory):
    sim = sim_factory(ttft_s=0.02, itl_s=0.002, tokens=5, route_status={"/api/ps": 500})
    r, _ = run_probe(endpoint_for(sim))
    assert r.ok and r.ps is None


def test_probe_of_a_missing_model_is_a_4xx(sim_factory):
    sim = sim_factory()
    for api in ("ollama", "openai"):
        r, _ = run_probe(endpoint_for(sim, api=api, model="nope:1b"))
        assert r.error_kind == "http_4xx"
        assert "nope:1b" in r.error_detail


def test_fifty_servers_probed_concurrently_finish_near_the_slowest(sim_factory):
    sims = [sim_factory(ttft_s=0.2, itl_s=0.01, tokens=20) for _ in range(49)]
    sims.append(sim_factory(ttft_s=0.6, itl_s=0.01, tokens=20))
    eps = [endpoint_for(s, name=f"sim{i}", api="ollama" if i % 2 else "openai") for i, s in enumerate(sims)]

    async def go():
        async with make_http_client() as http:
            t = time.perf_counter()
            rs = await asyncio.gather(*[probe_endpoint(e, http, max_tokens=50) for e in eps])
            return rs, time.perf_counter() - t

    results, wall = asyncio.run(go())
    assert all(r.ok for r in results), [r.error_detail for r in results if not r.ok]
    slowest = max(r.e2e_s for r in results)
    # never faster than the truth; how much slower depends on the load on this process's GIL
    # (accuracy is asserted on single servers above)
    assert slowest >= 0.6 + 19 * 0.01 - 0.02
    # Sequential probing would take 50 x ~0.4 s = 20 s.
    assert wall < slowest + 5.0  # generous: the 50 simulators share this process's GIL
    assert {r.endpoint for r in results} == {f"sim{i}" for i in range(50)}
