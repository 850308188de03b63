"""The benchmark runner: send a suite to one endpoint under a load profile, time every token.

Why its own timing loop (not the health probe): a benchmark needs every chunk's arrival time,
the answer text for grading, warm-up exclusion, repeats and four load profiles, and it must
add as little latency as possible itself (see benchmarks/bench_client.py for what it adds).
The formulas are in docs/metrics.md; this module and that file must agree.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
import uuid
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.bench.checks import CheckOutcome
from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.bench.starvation import Starvation
from llm_upkeep.bench.stats import describe
from llm_upkeep.bench.suites import PromptSpec, Suite
from llm_upkeep.clients import LLMError, OllamaClient, client_for
from llm_upkeep.clients.base import safe_url
from llm_upkeep.clients.errors import short_detail
from llm_upkeep.clients.ollama import same_model
from llm_upkeep.clients.sendtrace import SENT_AT
from llm_upkeep.config import EndpointConfig

IDENTITY_TIMEOUT_S = 10.0
METRICS = ("ttft_s", "itl_s", "tpot_s", "e2e_s", "decode_tokens_per_s", "output_tokens")


class RunSettings(BaseModel):
    """Everything about how a suite is sent that shapes the numbers (part of the baseline key)."""

    api: Literal["chat", "completions"] = Field(default="chat", description="Chat or plain completions API.")
    profile: Literal["sequential", "concurrent", "constant_rate", "poisson"] = Field(
        default="sequential", description="Load profile."
    )
    concurrency: int = Field(default=4, ge=1, description="In-flight requests (cap for rate profiles).")
    rate: float = Field(default=2.0, gt=0, description="Requests/s for constant_rate and poisson.")
    repeats: int = Field(default=3, ge=1, description="Measured sends of every prompt.")
    warmup: int = Field(default=2, ge=0, description="Unmeasured requests first.")
    max_tokens: int = Field(default=128, gt=0, description="Output cap of prompts without their own.")
    max_tokens_cap: int | None = Field(
        default=None, gt=0, description="Upper bound on every prompt's cap (quick smoke runs)."
    )
    seed: int = Field(default=42, description="Sampling seed (temperature is always 0).")
    ramp_up_s: float = Field(
        default=0.5, ge=0, description="Concurrent profile: worker starts spread over this."
    )
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature (0: deterministic).")
    streams_per_process: int = Field(
        default=16, ge=1, description="Concurrent profile: streams one client process carries before the "
        "streams are spread over worker processes (one per core at most). Not part of the baseline key.",
    )  # fmt: skip

    @classmethod
    def from_config(cls, cfg: BenchmarkConfig, api: str = "chat", **overrides: Any) -> RunSettings:
        data = {
            "api": api, "profile": cfg.profile, "concurrency": cfg.concurrency, "rate": cfg.rate,
            "repeats": cfg.repeats, "warmup": cfg.warmup, "max_tokens": cfg.max_tokens, "seed": cfg.seed,
            "ramp_up_s": cfg.ramp_up_s,
        }  # fmt: skip
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(data)

    def effective_concurrency(self) -> int:
        return 1 if self.profile == "sequential" else self.concurrency

    @property
    def key(self) -> str:
        """Runs compare only with runs sent the same way (same API, load, caps, seed)."""
        d = self.model_dump(exclude={"repeats", "warmup", "ramp_up_s", "streams_per_process"})
        if self.profile in ("sequential", "concurrent"):
            d.pop("rate")
        if self.profile == "sequential":
            d.pop("concurrency")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def max_tokens_for(self, suite: Suite, p: PromptSpec) -> int:
        n = suite.max_tokens_for(p, self.max_tokens)
        return min(n, self.max_tokens_cap) if self.max_tokens_cap else n


class ServerIdentity(BaseModel):
    """What is being measured: the baseline key's model digest and server version."""

    model: str = Field(description="Model name requested.")
    model_digest: str = Field(default="unknown", description="Model digest (Ollama) or fingerprint.")
    digest_source: str = Field(
        default="unknown", description="ollama-tags | openai-models-entry | given | unknown."
    )
    server_version: str = Field(default="unknown", description="Server version, or 'unknown'.")


class RequestRecord(BaseModel):
    """One request: its timing, its answer, and the checks on that answer."""

    seq: int = Field(description="Send order within the run (warm-up first).")
    prompt_id: str = Field(description="Suite prompt id.")
    job: str = Field(default="general", description="The prompt's job.")
    repeat: int = Field(description="Repeat number (0-based); -1 for warm-up.")
    warmup: bool = Field(default=False, description="Warm-up request, excluded from every metric.")
    ok: bool = Field(default=False, description="A complete streamed answer arrived.")
    error_kind: str | None = Field(default=None, description="LLMError kind of a failed request.")
    error_detail: str | None = Field(default=None, description="Short redacted error text.")
    scheduled_s: float = Field(default=0.0, description="Planned send time from run start (open loop).")
    sent_s: float = Field(default=0.0, description="Actual send time from run start.")
    send_delay_s: float | None = Field(
        default=None, description="From the send stamp to the request body written (the client's own send "
        "queue, included in TTFT and e2e; clients/sendtrace.py).",
    )  # fmt: skip
    ended_s: float = Field(
        default=0.0, description="When the answer (or the error) was complete, from run start."
    )
    ttft_s: float | None = Field(default=None, description="Send to first chunk with a token.")
    server_ttft_s: float | None = Field(
        default=None, description="The server's own account of its time to first token, where its final chunk "
        "gives one (Ollama: load_duration + prompt_eval_duration; llama.cpp: timings.prompt_ms). ttft_s minus "
        "this is what the network and the client added.",
    )  # fmt: skip
    e2e_s: float | None = Field(default=None, description="Send to the end of the stream.")
    output_tokens: int | None = Field(default=None, description="Generated tokens (usage, else chunks).")
    tokens_source: str = Field(default="chunks", description="usage | chunks.")
    chunks: int = Field(default=0, description="Chunks that carried a token.")
    tpot_s: float | None = Field(default=None, description="(e2e - ttft) / (output_tokens - 1).")
    decode_tokens_per_s: float | None = Field(default=None, description="1 / tpot.")
    itl_s: list[float] = Field(default_factory=list, description="Per-token inter-token latencies.")
    finish_reason: str | None = Field(default=None, description="stop | length | ... as the server said.")
    answer: str = Field(default="", description="The answer's content (reasoning excluded).")
    checks: list[dict] = Field(default_factory=list, description="CheckOutcome dicts of this answer.")


class RunResult(BaseModel):
    """One suite run against one endpoint through one API."""

    target: str = Field(description="Endpoint name.")
    api: str = Field(description="chat | completions.")
    dialect: str = Field(description="Endpoint API dialect: ollama | openai.")
    url: str = Field(description="Endpoint base URL (credentials removed).")
    identity: ServerIdentity = Field(description="Model digest and server version.")
    suite_name: str = Field(description="Suite name.")
    suite_hash: str = Field(description="Suite hash.")
    settings: RunSettings = Field(description="How the suite was sent.")
    run_id: str = Field(description="Unique id of this run.")
    started_at: datetime = Field(description="When the run started (UTC).")
    duration_s: float = Field(default=0.0, description="Measured phase: first send to last answer.")
    requests: list[RequestRecord] = Field(default_factory=list, description="Every request, warm-up too.")
    similarity_method: str | None = Field(default=None, description="embeddings | lexical (why).")
    client_processes: int = Field(default=1, description="Benchmark processes that carried the streams.")
    client_cpu_percent: float | None = Field(
        default=None, description="CPU of the busiest benchmark process while measuring, % of one core."
    )
    client_bound: str | None = Field(
        default=None, description="Why the benchmark client, not the server, set the pace (loop lag, CPU); "
        "no regression verdict is drawn from such a run.",
    )  # fmt: skip
    client_wait_percent: float | None = Field(
        default=None, description="Time the busiest benchmark process's event loop was ready to run but waited "
        "for a CPU, % of the measured wall time (kernel run-queue accounting; bench/starvation.py).",
    )  # fmt: skip
    client_wait_per_wakeup_ms: float | None = Field(
        default=None, description="Mean wait for a CPU each time that loop woke up (ms): what each timestamp "
        "the client took was delayed by, on average.",
    )  # fmt: skip
    client_send_delay_s: dict[str, float | int | None] = Field(
        default_factory=dict, description="From send stamp to request body written, over the measured requests "
        "(n, p50, p90, p99, max): the client's own send queue, counted in every TTFT.",
    )  # fmt: skip
    host_idle_percent: float | None = Field(
        default=None, description="Idle share of all the host's cores while measuring (%).",
    )
    client_lag_s: dict[str, float | int | None] = Field(
        default_factory=dict,
        description="Event-loop lag of the benchmark process while measuring (n, p50, p90, p99, max): how "
        "late the benchmark itself noticed events; a busy benchmark host shows up here.",
    )

    @property
    def label(self) -> str:
        return self.target if self.api == "chat" else f"{self.target}/{self.api}"

    def measured(self) -> list[RequestRecord]:
        return [r for r in self.requests if not r.warmup]

    def metrics(self) -> dict[str, Any]:
        """Run-level figures (docs/metrics.md): distributions, throughput, error rate."""
        reqs = self.measured()
        ok = [r for r in reqs if r.ok]
        dur = self.duration_s
        out_tokens = sum(r.output_tokens or 0 for r in ok)
        dist = {
            "ttft_s": describe([r.ttft_s for r in ok if r.ttft_s is not None]),
            "itl_s": describe([x for r in ok for x in r.itl_s]),
            "tpot_s": describe([r.tpot_s for r in ok if r.tpot_s is not None]),
            "e2e_s": describe([r.e2e_s for r in ok if r.e2e_s is not None]),
            "decode_tokens_per_s": describe([r.decode_tokens_per_s for r in ok if r.decode_tokens_per_s]),
            "output_tokens": describe([r.output_tokens for r in ok if r.output_tokens is not None]),
        }
        sources = sorted({r.tokens_source for r in ok})
        return {
            "requests": len(reqs),
            "ok": len(ok),
            "errors": len(reqs) - len(ok),
            "error_rate": (len(reqs) - len(ok)) / len(reqs) if reqs else 0.0,
            "duration_s": dur,
            "output_tokens": out_tokens,
            "output_tokens_per_s": out_tokens / dur if dur > 0 else 0.0,
            "requests_per_s": len(ok) / dur if dur > 0 else 0.0,
            "tokens_source": "+".join(sources) if sources else None,
            "error_kinds": _count(r.error_kind for r in reqs if not r.ok),
            "dist": dist,
        }

    def summary_metrics(self) -> dict[str, float | None]:
        """The eight figures of the CLI's JSON contract."""
        m = self.metrics()
        d = m["dist"]
        return {
            "ttft_p50_s": d["ttft_s"]["p50"],
            "ttft_p99_s": d["ttft_s"]["p99"],
            "itl_p50_s": d["itl_s"]["p50"],
            "tpot_p50_s": d["tpot_s"]["p50"],
            "e2e_p50_s": d["e2e_s"]["p50"],
            "output_tokens_per_s": m["output_tokens_per_s"],
            "requests_per_s": m["requests_per_s"],
            "error_rate": m["error_rate"],
        }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[str(i)] = out.get(str(i), 0) + 1
    return out


async def identify_endpoint(endpoint: EndpointConfig, http: httpx.AsyncClient) -> ServerIdentity:
    """Model digest and server version as the server reports them; 'unknown' where it cannot say.

    Ollama: the digest of the model in /api/tags and /api/version. OpenAI-compatible servers have
    no digest: the fingerprint is a hash of the model's /v1/models entry (id, root, max_model_len
    on vLLM), and the version comes from /version where there is one (vLLM; not llama.cpp).
    """
    client = client_for(endpoint, http)
    ident = ServerIdentity(model=endpoint.model)
    try:
        async with asyncio.timeout(IDENTITY_TIMEOUT_S):
            if isinstance(client, OllamaClient):
                for m in await client.tags():
                    if same_model(m.get("name") or m.get("model"), endpoint.model) and m.get("digest"):
                        ident.model_digest = str(m["digest"])
                        ident.digest_source = "ollama-tags"
                        break
            else:
                obj = await client.request_json("GET", "/v1/models")
                for m in (obj.get("data") if isinstance(obj, dict) else None) or []:
                    if isinstance(m, dict) and m.get("id") == endpoint.model:
                        stable = {
                            k: v for k, v in m.items() if k not in ("created", "permission", "permissions")
                        }
                        blob = json.dumps(stable, sort_keys=True).encode()
                        ident.model_digest = "fp:" + hashlib.sha256(blob).hexdigest()[:32]
                        ident.digest_source = "openai-models-entry"
                        break
            ident.server_version = (await client.version()) or "unknown"
    except (LLMError, TimeoutError):
        pass  # identity is evidence for the baseline key; the run itself will report the failure
    return ident


async def send_one(
    client, suite: Suite, p: PromptSpec, settings: RunSettings, *, seq: int, repeat: int, warmup: bool,
    run_t0: float, scheduled_s: float = 0.0,
) -> RequestRecord:  # fmt: skip
    """Stream one answer; every chunk is stamped on arrival (StreamEvent.t, perf_counter)."""
    rec = RequestRecord(
        seq=seq, prompt_id=p.id, job=p.job, repeat=repeat, warmup=warmup, scheduled_s=scheduled_s
    )
    times: list[float] = []
    parts: list[str] = []
    usage: dict | None = None
    server: dict | None = None
    t_end: float | None = None
    sent_at: list[float] = []
    token = SENT_AT.set(sent_at)  # the stream notes when the body was written (clients/sendtrace.py)
    t0 = time.perf_counter()
    rec.sent_s = t0 - run_t0
    try:
        gen = client.stream_generate(
            p.prompt, max_tokens=settings.max_tokens_for(suite, p), chat=settings.api == "chat",
            temperature=settings.temperature, seed=settings.seed, system=suite.system_for(p),
        )  # fmt: skip
        async with aclosing(gen) as events:
            async for ev in events:
                if ev.text or ev.reasoning:
                    times.append(ev.t)
                    parts.append(ev.text)
                if ev.done:
                    t_end = ev.t
                    usage, server = ev.usage, ev.server
        rec.ok = t_end is not None
        if not rec.ok:
            rec.error_kind, rec.error_detail = "truncated", "stream ended without its final event"
    except LLMError as exc:
        rec.error_kind, rec.error_detail = exc.kind, exc.detail
    except Exception as exc:  # one broken request is a measured error, never a crashed benchmark
        rec.error_kind, rec.error_detail = "protocol", short_detail(f"{type(exc).__name__}: {exc}")
    SENT_AT.reset(token)
    if sent_at:
        rec.send_delay_s = sent_at[0] - t0
    rec.ended_s = (t_end if t_end is not None else time.perf_counter()) - run_t0
    finish_timing(rec, t0, times, t_end, usage)
    rec.answer = "".join(parts)
    rec.finish_reason = (server or {}).get("done_reason")
    rec.server_ttft_s = server_ttft(server)
    return rec


def server_ttft(server: dict | None) -> float | None:
    """The server's time to its first token from its own final-chunk timings; None where it gives none.

    Why: a benchmark TTFT is the server's time plus the network's and the client's; the server's
    own figure tells the two apart (a report, or a test, can then say which side grew)."""
    if not server:
        return None
    prompt = server.get("prompt_eval_duration_s") or 0.0
    if prompt <= 0:
        return None
    return prompt + (server.get("load_duration_s") or 0.0)


def finish_timing(
    rec: RequestRecord, t0: float, times: list[float], t_end: float | None, usage: dict | None
) -> None:
    """TTFT, e2e, tokens, TPOT and per-token ITL from chunk arrival times (docs/metrics.md)."""
    k = len(times)
    rec.chunks = k
    if k:
        rec.ttft_s = times[0] - t0
    if rec.ok and t_end is not None:
        rec.e2e_s = t_end - t0
    n = None
    if usage and isinstance(usage.get("completion_tokens"), int):
        n, rec.tokens_source = int(usage["completion_tokens"]), "usage"
    elif k:
        n, rec.tokens_source = k, "chunks"
    rec.output_tokens = n
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    if gaps and n and n > 1:
        # A chunk may carry several tokens: spread each gap over the mean tokens per gap, so the
        # mean ITL equals the decode time per token whatever the server's chunking.
        per_gap = (n - 1) / (k - 1)
        rec.itl_s = [g / per_gap for g in gaps]
    if rec.ok and n and n > 1 and rec.ttft_s is not None and rec.e2e_s is not None and rec.e2e_s > rec.ttft_s:
        rec.tpot_s = (rec.e2e_s - rec.ttft_s) / (n - 1)
        rec.decode_tokens_per_s = 1.0 / rec.tpot_s


def plan_requests(
    suite: Suite, settings: RunSettings
) -> tuple[list[PromptSpec], list[tuple[PromptSpec, int]]]:
    """Warm-up prompts (cycled from the top of the suite) and measured (prompt, repeat) pairs."""
    warm = [suite.prompts[i % len(suite.prompts)] for i in range(settings.warmup)]
    measured = [(p, r) for r in range(settings.repeats) for p in suite.prompts]
    return warm, measured


def arrival_offsets(n: int, settings: RunSettings) -> list[float]:
    """Planned send times (s from start) of the open-loop profiles; Poisson draws are seeded."""
    if settings.profile == "constant_rate":
        return [i / settings.rate for i in range(n)]
    rng = random.Random(settings.seed)
    out, t = [], 0.0
    for i in range(n):
        if i:
            t += rng.expovariate(settings.rate)
        out.append(t)
    return out


async def run_suite(
    endpoint: EndpointConfig,
    suite: Suite,
    settings: RunSettings,
    http: httpx.AsyncClient,
    *,
    identity: ServerIdentity | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Send the suite to one endpoint; never raises for server faults (they are measured errors).

    When every warm-up request fails, the measured requests are not sent (recorded as errors
    with the warm-up's error kind): a dead or hanging server must not cost each its timeout.

    Grading is separate (llm_upkeep.bench.grading.grade_run) so that a caller can choose the
    reference answers for similarity checks.
    """
    client = client_for(endpoint, http)
    ident = identity or await identify_endpoint(endpoint, http)
    started = datetime.now(UTC)
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", endpoint.name)
    rid = run_id or f"{started:%Y%m%dT%H%M%S}-{safe_name}-{settings.api}-{uuid.uuid4().hex[:6]}"
    warm, measured = plan_requests(suite, settings)
    run_t0 = time.perf_counter()
    records: list[RequestRecord] = []
    seq = 0
    for p in warm:
        records.append(
            await send_one(client, suite, p, settings, seq=seq, repeat=-1, warmup=True, run_t0=run_t0)
        )
        seq += 1

    jobs = [(seq + i, p, r) for i, (p, r) in enumerate(measured)]
    if warm and not any(r.ok for r in records):
        # A dead or hanging server would cost every measured request its full timeout: record
        # them as not sent, with the warm-up's error, and end the run now.
        kind = records[-1].error_kind or "protocol"
        why = f"not sent: every warm-up request failed ({kind}: {records[-1].error_detail or ''})"
        now = time.perf_counter() - run_t0
        records += [
            RequestRecord(seq=s, prompt_id=p.id, job=p.job, repeat=r, error_kind=kind, error_detail=why[:300],
                          sent_s=now, ended_s=now)
            for s, p, r in jobs
        ]  # fmt: skip
        return RunResult(
            target=endpoint.name, api=settings.api, dialect=endpoint.api, url=safe_url(endpoint.url),
            identity=ident, suite_name=suite.name, suite_hash=suite.hash, settings=settings, run_id=rid,
            started_at=started, duration_s=0.0, requests=records,
        )  # fmt: skip
    out: list[RequestRecord] = []
    lag: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(watch_loop_lag(stop, lag))
    t_start = time.perf_counter()
    c_start = time.process_time()
    starved = Starvation().start()
    cpu_percent: float | None = None
    wait = (None, None)
    worker_lag: list[float] | None = None
    if settings.profile == "sequential":
        for s, p, r in jobs:
            out.append(
                await send_one(client, suite, p, settings, seq=s, repeat=r, warmup=False, run_t0=run_t0)
            )
    elif settings.profile == "concurrent" and client_processes(settings, len(jobs)) > 1:
        # Streams spread over worker processes, so the client's own queueing stays out of TTFT.
        from llm_upkeep.bench.procs import run_jobs_in_processes

        spread = await run_jobs_in_processes(
            endpoint, suite, settings, jobs, run_t0, client_processes(settings, len(jobs))
        )
        out += spread.records
        worker_lag = spread.lag  # the processes that stamped the chunks (not this one, which spawned them)
        cpu_percent = spread.cpu_percent
        wait = (spread.wait_percent, spread.wait_per_wakeup_ms)
    elif settings.profile == "concurrent":
        out += await run_concurrent(client, suite, settings, jobs, run_t0)
    else:
        sem = asyncio.Semaphore(settings.concurrency)
        offsets = arrival_offsets(len(jobs), settings)
        tasks: list[asyncio.Task] = []

        async def fire(s: int, p: PromptSpec, r: int, planned: float) -> None:
            try:
                out.append(await send_one(
                    client, suite, p, settings, seq=s, repeat=r, warmup=False, run_t0=run_t0,
                    scheduled_s=planned + (t_start - run_t0),
                ))  # fmt: skip
            finally:
                sem.release()

        for (s, p, r), off in zip(jobs, offsets, strict=True):
            delay = t_start + off - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            tasks.append(asyncio.create_task(fire(s, p, r, off)))
        await asyncio.gather(*tasks)

    stop.set()
    await monitor
    if worker_lag is not None:
        lag = worker_lag
    starved.stop()
    if wait == (None, None):  # the streams ran on this thread's loop
        wait = (starved.wait_percent, starved.wait_per_wakeup_ms)
    if cpu_percent is None:
        wall = time.perf_counter() - t_start
        cpu_percent = 100.0 * (time.process_time() - c_start) / wall if wall > 0 else None
    out.sort(key=lambda rec: rec.seq)
    records += out
    send_delay = describe([rec.send_delay_s for rec in out if rec.send_delay_s is not None])
    first_send = min((rec.sent_s for rec in out), default=0.0)
    duration = max((rec.ended_s for rec in out), default=0.0) - first_send
    return RunResult(
        target=endpoint.name, api=settings.api, dialect=endpoint.api, url=safe_url(endpoint.url),
        identity=ident, suite_name=suite.name, suite_hash=suite.hash, settings=settings, run_id=rid,
        started_at=started, duration_s=duration, requests=records, client_lag_s=describe(lag),
        client_processes=client_processes(settings, len(jobs)) if settings.profile == "concurrent" else 1,
        client_cpu_percent=None if cpu_percent is None else round(cpu_percent, 1),
        client_wait_percent=wait[0], client_wait_per_wakeup_ms=wait[1], host_idle_percent=starved.host_idle_percent,
        client_send_delay_s=send_delay,
        client_bound=client_bound_reason(describe(lag), cpu_percent, *wait, send_delay_p50=send_delay.get("p50")),
    )  # fmt: skip


async def run_concurrent(
    client, suite: Suite, settings: RunSettings, jobs: list, run_t0: float, *, part: int = 0, parts: int = 1
) -> list[RequestRecord]:
    """The concurrent profile on this loop: workers take jobs from one queue (``part`` of ``parts``
    when the streams are spread over processes: this process's share of the workers)."""
    out: list[RequestRecord] = []
    queue: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    total = min(settings.concurrency, max(1, len(jobs) * parts))
    mine = [i for i in range(total) if i % parts == part][: len(jobs)]

    async def worker(i: int) -> None:
        # Spread the workers' starts over ramp_up_s: a burst of simultaneous sends would queue
        # in the client itself and inflate the first requests' TTFT (docs/metrics.md).
        if settings.ramp_up_s > 0 and i:
            await asyncio.sleep(settings.ramp_up_s * i / total)
        while True:
            try:
                s, p, r = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            out.append(await send_one(client, suite, p, settings, seq=s, repeat=r, warmup=False, run_t0=run_t0))

    await asyncio.gather(*[worker(i) for i in mine])
    return out


def client_processes(settings: RunSettings, n_jobs: int) -> int:
    """Worker processes for the concurrent profile: one per ``streams_per_process`` streams, at
    most one per CPU core (more would only share the cores)."""
    import os

    want = -(-min(settings.concurrency, max(1, n_jobs)) // settings.streams_per_process)
    return max(1, min(want, os.cpu_count() or 1))


# The client, not the server, set the pace: its loop woke this late (p50) for a timer, a benchmark
# process used this much of a core, or (its CPUs saturated: every core it may use busy, with the
# server, other work or the client's own processes) the loop's thread was ready to run but kept
# off every CPU for this share of the measurement. Then the latencies include the client's queueing.
CLIENT_BOUND_LAG_S = 0.010
CLIENT_BOUND_CPU_PERCENT = 90.0
CLIENT_BOUND_WAIT_PERCENT = 30.0
# ... or its own send queue: the median request's body went out this long after its send stamp
# (a burst of simultaneous sends in one process; clients/sendtrace.py). The judged figures are
# medians, so a median this late shifts them by as much.
CLIENT_BOUND_SEND_DELAY_S = 0.010


def client_bound_reason(
    lag: dict,
    cpu_percent: float | None,
    wait_percent: float | None = None,
    wait_per_wakeup_ms: float | None = None,
    *,
    send_delay_p50: float | None = None,
) -> str | None:
    """Why this run measured the benchmark client rather than the server, or None.

    ``wait_percent``: the kernel's run-queue time of the busiest benchmark loop, as a share of the
    measured wall time (bench/starvation.py). Measured on the 2-core host (TTFT 50 ms, 16 tokens
    15 ms apart): 1-12 % at 4 to 64 streams with a core to spare; 36-61 % at 32 and 64 streams
    with every core busy, where the added TTFT p50 went from 3 to 45-75 ms. Bursts of other work
    on a shared host put 4-stream runs and the regression tests' runs at 18-26 %, with their
    timestamps late by 1-2 ms per wake-up: small beside a real regression, so not a reason to
    withhold every verdict (the comparison's lag budget covers shifts that small).
    """
    why = []
    p50 = lag.get("p50") if lag else None
    if p50 is not None and p50 >= CLIENT_BOUND_LAG_S:
        why.append(f"event-loop lag p50 {p50 * 1000:.0f} ms (>= {CLIENT_BOUND_LAG_S * 1000:.0f} ms)")
    if cpu_percent is not None and cpu_percent >= CLIENT_BOUND_CPU_PERCENT:
        why.append(f"client CPU {cpu_percent:.0f} % of a core (>= {CLIENT_BOUND_CPU_PERCENT:.0f} %)")
    if wait_percent is not None and wait_percent >= CLIENT_BOUND_WAIT_PERCENT:
        per = "" if wait_per_wakeup_ms is None else f", {wait_per_wakeup_ms:.2f} ms per wake-up"
        why.append(f"CPU-starved: the client's loop waited for a CPU {wait_percent:.0f} % of the time"
                   f"{per} (>= {CLIENT_BOUND_WAIT_PERCENT:.0f} %)")  # fmt: skip
    if send_delay_p50 is not None and send_delay_p50 >= CLIENT_BOUND_SEND_DELAY_S:
        why.append(f"send queue: half the requests were written {send_delay_p50 * 1000:.0f} ms or more after their "
                   f"send stamp (>= {CLIENT_BOUND_SEND_DELAY_S * 1000:.0f} ms)")  # fmt: skip
    return "; ".join(why) or None


LAG_INTERVAL_S = 0.02


async def watch_loop_lag(stop: asyncio.Event, samples: list[float], interval: float = LAG_INTERVAL_S) -> None:
    """Sample how late the event loop wakes up for a timer: the benchmark's own scheduling delay.

    Every measured latency includes this delay (a chunk that arrived while the process was not
    running is stamped late), so the comparison uses it to tell a slower server from a busy
    benchmark host.
    """
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append(max(0.0, time.perf_counter() - t - interval))


def outcomes_of(rec: RequestRecord) -> list[CheckOutcome]:
    return [CheckOutcome(**c) for c in rec.checks]
