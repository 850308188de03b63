"""Streams of the concurrent profile spread over worker processes.

Why: one Python process streams about 2,400 tokens/s per core; past that its own queueing is
read as the server's latency (at concurrency 64, 16 tokens 15 ms apart: +0.47 s TTFT p50 and
+4.3 s p99). GuideLLM spreads its streams over worker processes for the same reason. Each worker
process has its own event loop and HTTP client and takes its share of the jobs; chunk times are
``time.perf_counter()`` (CLOCK_MONOTONIC, the same clock in every process on Linux), so its
records line up with the run's start. Workers are spawned (not forked: the caller may be a
Prefect flow with threads).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from llm_upkeep.bench.runner import RequestRecord, RunSettings, run_concurrent, send_one, watch_loop_lag
from llm_upkeep.bench.starvation import Starvation
from llm_upkeep.bench.suites import Suite
from llm_upkeep.config import EndpointConfig


@dataclass
class SpreadResult:
    records: list[RequestRecord] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    cpu_percent: float | None = None  # the busiest worker process
    wait_percent: float | None = None  # the most starved worker's run-queue wait (bench/starvation.py)
    wait_per_wakeup_ms: float | None = None


async def _part(endpoint, suite, settings, jobs, run_t0, part, parts) -> dict:
    from llm_upkeep.clients import client_for, make_http_client

    lag: list[float] = []
    stop = asyncio.Event()
    async with make_http_client() as http:
        client = client_for(endpoint, http)
        # One unmeasured request first: a fresh process's first stream pays for code run for the
        # first time (tens of ms on a busy host), which the caller's warm-up paid in its own process.
        _, p0, _ = jobs[0]
        await send_one(client, suite, p0, settings, seq=-1, repeat=-1, warmup=True, run_t0=run_t0)
        monitor = asyncio.create_task(watch_loop_lag(stop, lag))
        c0, w0 = time.process_time(), time.perf_counter()
        starved = Starvation().start()
        out = await run_concurrent(client, suite, settings, jobs, run_t0, part=part, parts=parts)
        starved.stop()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        stop.set()
        await monitor
    return {"records": [r.model_dump() for r in out], "lag": lag, "cpu_percent": 100.0 * cpu / wall if wall else None,
            "wait_percent": starved.wait_percent, "wait_per_wakeup_ms": starved.wait_per_wakeup_ms}  # fmt: skip


def run_part(endpoint: dict, suite: dict, settings: dict, jobs: list, run_t0: float, part: int, parts: int) -> dict:
    """Entry point of one worker process (arguments as plain data)."""
    ep, su, st = EndpointConfig.model_validate(endpoint), Suite.model_validate(suite), RunSettings.model_validate(settings)
    by_id = {p.id: p for p in su.prompts}
    js = [(s, by_id[pid], r) for s, pid, r in jobs]
    return asyncio.run(_part(ep, su, st, js, run_t0, part, parts))


def _warm() -> None:
    """Run in each worker before its share arrives: imports done, so the streams start together."""
    import llm_upkeep.clients  # noqa: F401


async def run_jobs_in_processes(
    endpoint: EndpointConfig, suite: Suite, settings: RunSettings, jobs: list, run_t0: float, parts: int
) -> SpreadResult:
    """The jobs dealt round-robin to ``parts`` spawned processes; their records, lag and CPU."""
    ctx = multiprocessing.get_context("spawn")
    shares = [[(s, p.id, r) for s, p, r in jobs[k::parts]] for k in range(parts)]
    data = (endpoint.model_dump(mode="json"), suite.model_dump(mode="json"), settings.model_dump(mode="json"))
    loop = asyncio.get_running_loop()
    res = SpreadResult()
    with ProcessPoolExecutor(max_workers=parts, mp_context=ctx) as pool:
        await asyncio.gather(*[loop.run_in_executor(pool, _warm) for _ in range(parts)])
        answers = await asyncio.gather(*[
            loop.run_in_executor(pool, run_part, *data, shares[k], run_t0, k, parts) for k in range(parts)
        ])  # fmt: skip
    for a in answers:
        res.records += [RequestRecord.model_validate(r) for r in a["records"]]
        res.lag += a["lag"]
    cpus = [a["cpu_percent"] for a in answers if a["cpu_percent"] is not None]
    res.cpu_percent = max(cpus) if cpus else None
    waits = [a for a in answers if a.get("wait_percent") is not None]
    if waits:
        res.wait_percent = max(a["wait_percent"] for a in waits)
        res.wait_per_wakeup_ms = max(a["wait_per_wakeup_ms"] for a in waits)
    return res
