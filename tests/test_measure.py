"""The isolated measurement path (llm_upkeep/measure.py): same results as a bare probe, from a
process of its own, and a classified result when that process is gone."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from llm_upkeep import measure
from llm_upkeep.clients import make_http_client
from llm_upkeep.measure import measure_probe, measure_probes
from llm_upkeep.probe import probe_endpoint
from tests.llm_fixtures import endpoint_for
from tests.timing import as_true_as_bare


def bare(ep, **kw):
    async def go():
        async with make_http_client() as http:
            return await probe_endpoint(ep, http, **kw)

    return asyncio.run(go())


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_process_path_times_like_a_bare_probe(sim_factory, api, monkeypatch):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=0.30, itl_s=0.02, tokens=60)
    ep = endpoint_for(sim, api=api)
    asyncio.run(measure_probe(ep, max_tokens=4))  # the probe process is started and connected
    b = bare(ep, max_tokens=16)
    r = asyncio.run(measure_probe(ep, max_tokens=16))
    assert r.ok and r.output_tokens == 16 and r.text == b.text
    assert measure._backends["process"].proc.pid != os.getpid()
    assert as_true_as_bare(r.ttft_s, 0.30, b.ttft_s)
    assert as_true_as_bare(r.e2e_s, 0.30 + 15 * 0.02, b.e2e_s)
    assert r.tokens_source == b.tokens_source and (r.ps is None) == (b.ps is None)


@pytest.mark.parametrize(("fault", "kind"), [("http_500", "http_5xx"), ("malformed", "malformed"), ("oom", "oom")])
def test_faults_are_classified_across_the_process_boundary(sim_factory, fault, kind, monkeypatch):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=0.02, itl_s=0.005, tokens=10)
    sim.set_fault(fault)
    r = asyncio.run(measure_probe(endpoint_for(sim, timeout_s=2.0), max_tokens=8))
    assert not r.ok and r.error_kind == kind
    assert r.error_kind == bare(endpoint_for(sim, timeout_s=2.0), max_tokens=8).error_kind


def test_refused_endpoint_and_order_of_many(sim_factory, monkeypatch):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    up = sim_factory(ttft_s=0.05, itl_s=0.005, tokens=10)
    down = sim_factory()
    down_ep = endpoint_for(down, name="down", connect_timeout_s=1.0)
    down.stop()
    eps = [endpoint_for(up, name="a"), down_ep, endpoint_for(up, name="c", api="openai")]
    res = asyncio.run(measure_probes(eps, max_tokens=4))
    assert [r.endpoint for r in res] == ["a", "down", "c"]
    assert [r.ok for r in res] == [True, False, True]
    assert res[1].error_kind == "connection_refused"


@pytest.mark.parametrize(("fault", "tries"), [("http_500", 3), ("malformed", 1), ("oom", 1)])
def test_a_probe_retries_only_transient_failures_with_doubling_delays(sim_factory, fault, tries, monkeypatch):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=0.02, itl_s=0.005, tokens=10)
    sim.set_fault(fault)
    waits: list[float] = []

    async def sleep(s):
        waits.append(s)

    r = asyncio.run(measure.measure_probe_retried(endpoint_for(sim, timeout_s=2.0), prompt="hi", max_tokens=8,
                                                  retries=2, retry_delay_s=0.5, sleep=sleep))  # fmt: skip
    gens = [q for q in sim.requests if q["path"] in ("/api/chat", "/api/generate")]
    assert len(gens) == tries and not r.ok  # the last try's classified failure is the result
    assert waits == [0.5, 1.0][: tries - 1]


def test_a_probe_that_recovers_on_retry_reads_ok(sim_factory, monkeypatch):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=0.02, itl_s=0.005, tokens=10)
    sim.set_fault("http_500")

    async def sleep(_s):
        sim.set_fault(None)  # the server came back while the probe waited

    r = asyncio.run(measure.measure_probe_retried(endpoint_for(sim, timeout_s=2.0), prompt="hi", max_tokens=8,
                                                  retries=2, retry_delay_s=0.5, sleep=sleep))  # fmt: skip
    assert r.ok and r.output_tokens == 8


def test_api_key_reaches_the_server_from_the_probe_process(sim_factory, monkeypatch):
    """The key is resolved here when the probe is asked for, even when the probe process was
    started before the variable was set."""
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=0.02, itl_s=0.005, tokens=5, api_key="s3cret-key-15")
    measure.start_probe_worker()
    ep = endpoint_for(sim, api="openai", api_key_env="T15_PROBE_KEY")
    assert asyncio.run(measure_probe(ep, max_tokens=4)).error_kind == "auth"
    monkeypatch.setenv("T15_PROBE_KEY", "s3cret-key-15")
    r = asyncio.run(measure_probe(ep, max_tokens=4))
    assert r.ok, r.error_detail


def test_a_killed_probe_process_gives_a_result_not_a_traceback(sim_factory, monkeypatch, caplog):
    monkeypatch.setenv(measure.ENV_ISOLATION, "process")
    sim = sim_factory(ttft_s=1.0, itl_s=0.01, tokens=5)
    ep = endpoint_for(sim)
    measure.start_probe_worker()
    proc = measure._backends["process"].proc
    assert measure._backends["process"].ready.wait(20)

    async def go():
        task = asyncio.ensure_future(measure_probe(ep, max_tokens=4))
        await asyncio.sleep(0.3)  # the request is in the probe process, waiting for its first token
        os.kill(proc.pid, signal.SIGKILL)
        return await task

    r = asyncio.run(go())
    assert r.ok and r.ttft_s is not None  # measured again, on the fallback thread
    assert "probe process ended" in caplog.text
    # the next probe starts a fresh probe process (it could start before)
    r2 = asyncio.run(measure_probe(endpoint_for(sim, name="again"), max_tokens=2))
    assert r2.ok and measure._backends["process"].proc.pid != proc.pid


def test_unknown_isolation_value_falls_back_to_the_process(monkeypatch, caplog):
    monkeypatch.setenv(measure.ENV_ISOLATION, "telepathy")
    assert measure.isolation() == "process"
    assert "telepathy" in caplog.text


@pytest.mark.parametrize("path", ["thread", "inline"])
def test_thread_and_inline_paths_give_the_same_result(sim_factory, path):
    sim = sim_factory(ttft_s=0.05, itl_s=0.005, tokens=10)
    r = asyncio.run(measure_probe(endpoint_for(sim), max_tokens=6, path=path))
    assert r.ok and r.output_tokens == 6


def test_the_stuck_limit_leaves_room_for_the_paced_start_of_a_big_fleet():
    from llm_upkeep.config import EndpointConfig
    from llm_upkeep.probe_worker import START_WAIT_MAX_S

    ep = EndpointConfig(name="x", api="ollama", url="http://127.0.0.1:1", model="m", timeout_s=30)
    alone = measure.stuck_limit_s(ep)
    assert alone == 30 + min(measure.PS_TIMEOUT_S, 30) + measure.STUCK_MARGIN_S
    # the 2,000th probe of one batch starts at most 2,000 longest waits late: its own 30 s is intact
    assert measure.stuck_limit_s(ep, 2000) - alone == 2000 * START_WAIT_MAX_S == 50.0



def test_the_thread_fallback_counts_its_queued_probes_for_the_stuck_limit(sim_factory):
    """The thread path paces its starts as the process does, so a probe late in a big batch
    waits for its start: the stuck limit reads how many are queued there too."""
    import time

    sim = sim_factory(ttft_s=0.2, itl_s=0.005, tokens=4)
    backend = measure._ThreadBackend()
    try:
        futs = [backend.submit(endpoint_for(sim), "test", 4, True) for _ in range(3)]
        assert backend.queued == 3
        assert all(f.result(30).ok for f in futs)
        deadline = time.monotonic() + 5
        while backend.queued and time.monotonic() < deadline:  # done callbacks run on its thread
            time.sleep(0.01)
        assert backend.queued == 0
    finally:
        backend.close()
