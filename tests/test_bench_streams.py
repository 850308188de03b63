"""The benchmark runner does not measure itself: streams spread over worker processes, and a run
whose client set the pace is flagged and draws no regression verdict (issue 15)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time

from llm_upkeep.bench.compare import compare_runs
from llm_upkeep.bench.config import RegressionThresholds
from llm_upkeep.bench.grading import grade_run, reference_answers
from llm_upkeep.bench.runner import (
    CLIENT_BOUND_SEND_DELAY_S,
    CLIENT_BOUND_WAIT_PERCENT,
    LAG_INTERVAL_S,
    RunSettings,
    client_processes,
    run_suite,
    server_ttft,
)
from llm_upkeep.bench.suites import parse_suite
from llm_upkeep.clients import make_http_client
from llm_upkeep.config import EndpointConfig
from tests.bench_fixtures import sim_process, tiny_suite
from tests.llm_fixtures import endpoint_for

TOKENS = 16
SUITE = parse_suite({"name": "streams", "max_tokens": TOKENS,
                     "prompts": [{"id": f"p{i}", "prompt": f"Say something about item {i}."} for i in range(8)]})  # fmt: skip


def run(url, concurrency, repeats, ramp_up_s=0.0, api="openai", **kw):
    ep = EndpointConfig(name="sim", api=api, url=url, model="llama3:8b", timeout_s=120)
    st = RunSettings(profile="concurrent", concurrency=concurrency, repeats=repeats, warmup=4, max_tokens=TOKENS,
                     ramp_up_s=ramp_up_s, **kw)  # fmt: skip

    async def go():
        async with make_http_client() as http:
            return await run_suite(ep, SUITE, st, http)

    return asyncio.run(go())


def test_process_count_follows_streams_and_cores():
    st = RunSettings(profile="concurrent", concurrency=32)
    assert client_processes(st, 200) == min(2, os.cpu_count())
    assert client_processes(st.model_copy(update={"concurrency": 16}), 200) == 1
    assert client_processes(st, 1) == 1
    assert st.key == st.model_copy(update={"streams_per_process": 4}).key, "not part of the baseline key"


def test_added_ttft_at_32_streams_is_within_2x_of_16_and_every_request_is_recorded():
    """TTFT 50 ms, 16 tokens 15 ms apart (67 tokens/s a stream), streams started as users' runs
    start them (RunSettings' default ramp-up): 32 streams on two processes keep the client's own
    delay within 2 x that at 16 on one (one process alone: 469 ms at 64)."""
    # Why the default ramp-up and not 0: this simulator answers every request in exactly the same
    # time, so streams started together stay together and every 275 ms all 32 send at once. Then
    # the client's send queue, with two client processes and the simulator wanting CPU at the
    # same instant on two cores, is what grows: send delay p50 4.8-9.3 ms at 32 against 1.4-2.4 ms
    # at 16 (added TTFT 5.3-9.5 ms against 2.2-3.2). That burst is a different question, the
    # send-queue flag's (test_a_burst_of_sends_is_flagged_from_the_clients_send_queue).
    # The delays compared are the client's alone: TTFT minus the server's own account of its time
    # to the first token (Ollama's load + prompt eval durations), so a simulator that falls behind
    # on the shared host is not counted as the client's.
    ramp = RunSettings(profile="concurrent").ramp_up_s
    seen = []
    for _attempt in range(3):
        with sim_process(0.05, 0.015, TOKENS) as url:
            r16 = run(url, 16, 12, ramp_up_s=ramp, api="ollama")
            r32 = run(url, 32, 12, ramp_up_s=ramp, api="ollama")
            r16b = run(url, 16, 12, ramp_up_s=ramp, api="ollama")  # both sides of the 32: the load moves
        assert r32.client_processes == 2 and r16.client_processes == 1
        recs = r32.measured()
        assert len(recs) == 96 and all(x.ok for x in recs)
        assert sorted(x.seq for x in recs) == list(range(4, 100)), "each request once, in its send order"
        assert all(x.output_tokens == TOKENS and x.ttft_s > 0.045 for x in recs)
        assert all(0.045 < x.server_ttft_s <= x.ttft_s for r in (r16, r32, r16b) for x in r.measured())
        base = max(client_added_ttft_p50(r16), client_added_ttft_p50(r16b))
        # On a host so busy that the client itself lags (other work on the two cores), the run must
        # say so instead: then no verdict is drawn from it, and the ratio is not this code's.
        ratio_ok = client_added_ttft_p50(r32) <= 2 * base
        if ratio_ok or r32.client_bound:
            break
        seen.append((client_added_ttft_p50(r32), base, r32.client_send_delay_s, r32.client_wait_percent))
    assert ratio_ok or r32.client_bound, seen
    # The loop lag is that of the processes that stamped the chunks, not of the one that spawned
    # them (its start-up stall is no part of any timestamp): at most one sample per 20 ms of the
    # measured span in each worker.
    assert r32.client_lag_s["n"] <= 2 * (r32.duration_s / LAG_INTERVAL_S + 2), (r32.client_lag_s, r32.duration_s)


def test_server_ttft_comes_from_the_servers_own_timings_or_is_none():
    from llm_upkeep.clients.ollama import ollama_server_timings
    from llm_upkeep.clients.openai import _llamacpp_timings

    ollama = ollama_server_timings({"load_duration": 100_000_000, "prompt_eval_duration": 250_000_000})
    assert abs(server_ttft(ollama) - 0.35) < 1e-9
    assert abs(server_ttft(_llamacpp_timings({"prompt_ms": 42.0, "predicted_ms": 900.0})) - 0.042) < 1e-9
    # Ollama omits zero metrics and vLLM gives no timings: no figure, never a made-up 0.
    assert server_ttft(ollama_server_timings({"load_duration": 5})) is None
    assert server_ttft(None) is None and server_ttft({}) is None


def client_added_ttft_p50(r):
    """What the network and the client added to TTFT (median): TTFT minus the server's own figure."""
    return statistics.median(x.ttft_s - x.server_ttft_s for x in r.measured() if x.ok)


def test_a_saturated_client_is_flagged_and_draws_no_verdict(sim_factory):
    # 64 streams from one process against an instant server: the client, not the server, is the limit.
    with sim_process(0.0, 0.0, TOKENS) as url:
        r = run(url, 64, 16, streams_per_process=64)
    assert r.client_processes == 1
    assert r.client_bound, (r.client_lag_s, r.client_cpu_percent)

    # The same flag on a run that is slower than its baseline: no speed verdict, a note says why.
    sim = sim_factory(ttft_s=0.2, itl_s=0.01, tokens=16)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(3, max_tokens=16)
    st = RunSettings(profile="concurrent", concurrency=3, repeats=5, warmup=1, ramp_up_s=0.05)

    async def graded(reference=None):
        async with make_http_client() as http:
            x = await run_suite(ep, suite, st, http)
            await grade_run(x, suite, reference=reference, endpoint=endpoint_for(sim, api="openai"), http=http)
        return x

    base = asyncio.run(graded())
    sim.behavior.slowdown = 2.0
    slow = asyncio.run(graded(reference_answers(base)))
    assert compare_runs(base, slow, RegressionThresholds()).regressed  # a real regression, judged
    bound = slow.model_copy(update={"client_bound": r.client_bound})
    comp = compare_runs(base, bound, RegressionThresholds())
    assert not any(x["kind"] == "speed" for x in comp.regressions)
    assert any("no speed verdict" in n and "bottleneck" in n for n in comp.notes)


@contextlib.contextmanager
def cpu_hogs(n: int):
    """n busy processes on the CPUs this process may use (they inherit its affinity)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextlib.contextmanager
def one_core_taken(hogs: int):
    """The client's processes (spawned from here, inheriting this affinity) confined to one core
    with ``hogs`` busy processes: a benchmark host whose other work took the client's CPU. The
    simulator, started before, keeps the other cores, so its timing stays the truth."""
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})
    try:
        with cpu_hogs(hogs):
            yield
    finally:
        os.sched_setaffinity(0, old)


def test_a_starved_client_is_flagged_from_its_cpu_wait_and_draws_no_verdict():
    """The flag comes from the kernel's run-queue time of the client's loop, not from the number of
    streams: 32 streams whose core other work has taken are flagged for their CPU wait; 4 streams
    on a host with a core to spare are not. A flagged run is slower than its calm baseline, and no
    verdict is drawn from it.

    Why one core taken rather than busy loops on every core: with every core busy the simulator is
    slowed too and the streams' sends bunch up, so the send-queue flag fires first and the wait
    read 18-29 % on one host and 36-61 % on another (scheduler and load). With the client's core
    taken by 8 busy loops and the streams started as users' runs start them (default ramp-up),
    the wait read 80-81 % in three of three runs (TTFT p50 84-121 ms against 52 ms calm), with
    4 loops 54-56 %, with 2 loops 33-36 %: the share follows the competition for the core."""
    ep_of = lambda url: EndpointConfig(name="sim", api="openai", url=url, model="llama3:8b", timeout_s=120)  # noqa: E731
    ramp = RunSettings(profile="concurrent").ramp_up_s

    async def graded(url, r, reference=None):
        async with make_http_client() as http:
            await grade_run(r, SUITE, reference=reference, endpoint=ep_of(url), http=http)
        return r

    with sim_process(0.05, 0.015, TOKENS) as url:
        # Other work on this shared host can starve even 4 streams (22 % seen at load 8, and then
        # the flag is true): like the other timing tests, one of three rounds must be calm.
        for _attempt in range(3):
            calm = run(url, 4, 6, ramp_up_s=ramp)
            if calm.client_wait_percent is None or calm.client_wait_percent < CLIENT_BOUND_WAIT_PERCENT:
                break
            time.sleep(2)
        with one_core_taken(8):
            busy = run(url, 32, 6, ramp_up_s=ramp)
        calm = asyncio.run(graded(url, calm))
        busy = asyncio.run(graded(url, busy, reference_answers(calm)))
    assert calm.client_wait_percent is not None and calm.host_idle_percent is not None
    assert calm.client_wait_percent < CLIENT_BOUND_WAIT_PERCENT and not calm.client_bound, calm.client_bound
    assert busy.client_processes == 2
    assert busy.client_bound and "waited for a CPU" in busy.client_bound, (
        busy.client_wait_percent, busy.client_lag_s, busy.client_cpu_percent, busy.client_bound)  # fmt: skip
    assert busy.client_wait_percent > 2 * max(calm.client_wait_percent, CLIENT_BOUND_WAIT_PERCENT / 2)

    # Stripped of the client's own evidence (the flag, and its loop lag, which the comparison also
    # budgets), the starved run reads as a server regression; as measured, no speed verdict.
    bare = busy.model_copy(update={"client_bound": None, "client_lag_s": calm.client_lag_s})
    assert any(x["kind"] == "speed" for x in compare_runs(calm, bare, RegressionThresholds()).regressions)
    comp = compare_runs(calm, busy, RegressionThresholds())
    assert not any(x["kind"] == "speed" for x in comp.regressions), comp.regressions
    assert any("no speed verdict" in n and "waited for a CPU" in n for n in comp.notes)


def test_a_burst_of_sends_is_flagged_from_the_clients_send_queue():
    """64 streams sent at once from one process: the later requests are written tens of ms after
    their send stamp (httpcore's trace), that queue is in their TTFT, and the run says so. The
    send delay of every request is recorded and is part of its TTFT."""
    with sim_process(0.05, 0.015, TOKENS) as url:
        r = run(url, 64, 16, streams_per_process=64)
        calm = run(url, 1, 2)
    recs = r.measured()
    assert r.client_send_delay_s["n"] == len(recs) == 128
    assert all(x.ok and 0 <= x.send_delay_s < x.ttft_s for x in recs)
    assert r.client_bound and "send queue" in r.client_bound, (r.client_send_delay_s, r.client_bound)
    # One stream at a time: the body goes out at once, far under the flag's bound.
    assert calm.client_send_delay_s["p50"] < CLIENT_BOUND_SEND_DELAY_S / 2, calm.client_send_delay_s
