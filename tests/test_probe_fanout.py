"""A fleet's endpoints probed at once read their true TTFT (benchmarks/probe_fanout.py).

At 500 endpoints one shared connection pool made probes wait for a connection, and its scans of
every connection took 35 ms of CPU per probe, inside the TTFT clock: p50 9.0 s against a true
0.5 s. Later, on a slower machine, a fixed start interval of 5 ms was shorter than what one probe
costs the probe process's loop (6 to 8 ms of CPU), so starts piled up a backlog that later probes
read as TTFT: 1.27 to 1.44 x a lone probe at 200, with the servers on time to the millisecond.
Here 200 endpoints (simulators in processes of 25, as 8 hosts' worth) through the flows'
measurement path, against one probe of the same servers alone, measured in the same run; the
simulators' own records (request received, first token sent) tell the servers' share from the
probe side's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_upkeep import probe_worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", ["process", "thread", "inline"])
def test_200_endpoints_at_once_read_ttft_close_to_a_lone_probe(path):
    """process: the flows' path; thread: its fallback; inline: `llm-upkeep check`.

    Measured in a process of its own (benchmarks/probe_fanout.py), as `llm-upkeep check` or a flow
    run would be: the thread and inline paths run on the caller's interpreter, and inside this
    test session's, after some 500 other tests, one thread-path run read p90 1.33 s with p50
    1.03 x: stalls of the pytest process (its threads, its collector), not of the probe path."""
    env = {**os.environ, "LLM_UPKEEP_PROBE_ISOLATION": path}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "probe_fanout.py"), "--endpoints", "200",
                        "--path", path], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["ok"] == 200 and out["failed"] == {}, out
    # the servers were on time (their own receipt-to-first-token against the lone probe's), so
    # what the probes read beyond a lone probe is the probe side's
    assert out["server_ttft_p50_s"] <= out["bare_server_ttft_s"] * 1.02, out
    # measured on a slow 2-core machine: p50 1.01-1.03 x and p90 1.03-1.05 x with the paced,
    # loop-watching starts; 1.27-1.38 x and 1.86-2.06 x with a fixed 5 ms interval there (2.25 x
    # at p50 on the thread and inline paths, which started every probe at once); 1.62 x at p50
    # with one shared pool (on a faster machine)
    assert out["p50_over_bare"] <= 1.15, out
    assert out["ttft_p90_s"] <= out["bare_ttft_s"] * 1.3, out


def _starts(n: int) -> list[float]:
    async def go() -> list[float]:
        loop, last, out = asyncio.get_running_loop(), float("-inf"), []
        t0 = loop.time()
        for _ in range(n):
            last = await probe_worker.wait_for_start(last)
            out.append(last - t0)
        return out

    return asyncio.run(go())


def test_starts_are_an_interval_apart_on_a_loop_that_keeps_up(monkeypatch):
    monkeypatch.setattr(probe_worker, "LOOP_LAG_LIMIT_S", float("inf"))  # always on time
    t = _starts(21)
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    assert min(gaps) >= probe_worker.START_INTERVAL_S
    assert t[0] < probe_worker.START_INTERVAL_S  # the first waits for nothing


def test_a_start_waits_at_most_the_longest_wait_on_a_loop_that_never_catches_up(monkeypatch):
    monkeypatch.setattr(probe_worker, "LOOP_LAG_LIMIT_S", -1.0)  # never on time
    t = _starts(6)
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    bare = time.perf_counter()
    asyncio.run(asyncio.sleep(probe_worker.START_WAIT_MAX_S))
    bare = time.perf_counter() - bare
    # each start gives up once the longest wait is over: never before, and not much after (a bare
    # sleep of the same length, measured here, is the reference)
    assert min(gaps) >= probe_worker.START_WAIT_MAX_S
    assert sum(gaps) / len(gaps) <= bare * 1.5


def test_a_start_waits_for_a_stalled_loop_to_be_on_time_again():
    async def go() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        since = loop.time()
        stalled: list[float] = []

        def stall() -> None:  # another probe's work holding the loop for 12 ms
            time.sleep(0.012)
            stalled.append(loop.time())

        loop.call_later(probe_worker.START_INTERVAL_S / 2, stall)
        return since, await probe_worker.wait_for_start(since), stalled[0]

    since, started, stall_end = asyncio.run(go())
    # the timer due at 5 ms fired after the stall, late: the start waited one more interval
    # (or, where the stall itself ran past it, until the longest wait) instead of starting into
    # the backlog
    give_up = since + probe_worker.START_WAIT_MAX_S
    assert started >= min(stall_end + probe_worker.START_INTERVAL_S * 0.99, give_up)
    assert stall_end < give_up, "the stall ran past the longest wait: this run proves nothing"


def test_the_pacer_starts_probes_in_the_order_they_asked():
    async def go() -> list[tuple[int, float]]:
        pacer, loop, out = probe_worker.StartPacer(), asyncio.get_running_loop(), []

        async def one(i: int) -> None:
            await pacer.wait()
            out.append((i, loop.time()))

        await asyncio.gather(*[one(i) for i in range(8)])
        return out

    out = asyncio.run(go())
    assert [i for i, _ in out] == list(range(8))
    assert min(b - a for (_, a), (_, b) in zip(out, out[1:], strict=False)) >= probe_worker.START_INTERVAL_S
