"""Tokens served over a window: from request logs (OpenAI usage, Ollama prompt_eval_count/eval_count)
or from the servers' own Prometheus counters (vLLM, llama.cpp), which are sampled into
``state_dir/token-counters.jsonl`` by :func:`record_token_counters` and read back as counter
increases with resets handled (a restarted server starts its counters at 0 again).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from llm_upkeep.config import EndpointConfig
from llm_upkeep.cost.config import TokenSource
from llm_upkeep.cost.energy import split_by_day
from llm_upkeep.redact import redact
from llm_upkeep.security.accesslog import read_request_log
from llm_upkeep.security.config import AccessLogSource
from llm_upkeep.servermetrics.checks import counter_increase
from llm_upkeep.servermetrics.scrape import scrape_metrics

COUNTERS_FILE = "token-counters.jsonl"
# The counters' names per server (vLLM, SGLang, TGI, llama.cpp): llm_upkeep/servermetrics/dialects.py.


@dataclass
class TokenCount:
    source: str
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    requests: int = 0
    resets: int = 0
    daily: dict[date, list[float]] = field(default_factory=dict)  # day -> [input, output]
    notes: list[str] = field(default_factory=list)

    def add(self, day: date, i: float, o: float) -> None:
        d = self.daily.setdefault(day, [0.0, 0.0])
        d[0] += i
        d[1] += o
        self.input_tokens += i
        self.output_tokens += o


# ---------------------------------------------------------------- logs


def tokens_from_log(src: TokenSource, start: datetime, end: datetime) -> TokenCount:
    read = read_request_log(AccessLogSource(path=src.path, format="jsonl", ts_field=src.ts_field), start, end)
    tc = TokenCount(source=f"log {src.path}", notes=list(read.notes))
    missing = 0
    for r in read.records:
        if r.prompt_tokens is None and r.output_tokens is None:
            missing += 1
            continue
        tc.requests += 1
        tc.add(r.ts.date(), float(r.prompt_tokens or 0), float(r.output_tokens or 0))
    if missing:
        tc.notes.append(f"{src.path}: {missing} request(s) without token counts")
    return tc


# ---------------------------------------------------------------- counters


def counters_path(state_dir) -> Path:
    return Path(state_dir) / COUNTERS_FILE


def append_counter_sample(state_dir, endpoint: str, ts: datetime, prompt: float, output: float) -> None:
    """One line per sample; appended and fsynced, never rewritten."""
    p = counters_path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": ts.astimezone(UTC).isoformat(), "endpoint": endpoint,
                       "prompt": prompt, "output": output}) + "\n"  # fmt: skip
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_counter_samples(state_dir, endpoint: str) -> list[tuple[datetime, float, float]]:
    p = counters_path(state_dir)
    out = []
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            d = json.loads(line)
            if d.get("endpoint") != endpoint:
                continue
            out.append((datetime.fromisoformat(d["ts"]), float(d["prompt"]), float(d["output"])))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line after a crash is skipped, not fatal
    return sorted(out)


def counter_tokens(samples: list[tuple[datetime, float, float]], start: datetime, end: datetime,
                   source: str) -> TokenCount:  # fmt: skip
    """Increases of the prompt/output counters between consecutive samples, split across days."""
    tc = TokenCount(source=source)
    for (a, pa, oa), (b, pb, ob) in zip(samples, samples[1:], strict=False):
        if b <= start or a >= end or b <= a:
            continue
        # Prometheus' increase(): each counter on its own; a value below the previous one means the
        # server restarted and counted again from 0, so all of the new value is new.
        dp, do = counter_increase(pa, pb), counter_increase(oa, ob)
        if pb < pa or ob < oa:
            tc.resets += 1
        parts = split_by_day(a, b, start, end)
        whole = (min(b, end) - max(a, start)) / (b - a)
        # Totals from one product (no float drift from summing day fractions); days for the plot.
        tc.input_tokens += dp if whole == 1 else dp * whole
        tc.output_tokens += do if whole == 1 else do * whole
        for day, frac in parts:
            d = tc.daily.setdefault(day, [0.0, 0.0])
            d[0] += dp * frac
            d[1] += do * frac
    if len(samples) < 2:
        tc.notes.append(f"{source}: fewer than two counter samples; run the cost review (or "
                        "record_token_counters) more often")  # fmt: skip
    return tc


async def scrape_counters(
    ep: EndpointConfig, http: httpx.AsyncClient, timeout: float = 10.0
) -> tuple[float, float] | None:
    """(prompt, output) token counters from the endpoint's /metrics (vLLM, SGLang, TGI, llama.cpp);
    None when it has none. Raises httpx.HTTPError when /metrics exists but cannot be read."""
    r = await scrape_metrics(ep, http, timeout_s=timeout)
    if r.status == "error":
        raise httpx.HTTPError(r.detail)
    m = r.metrics
    if m is None or (m.prompt_tokens is None and m.generation_tokens is None):
        return None
    return m.prompt_tokens or 0.0, m.generation_tokens or 0.0


async def record_token_counters(state_dir, endpoints: list[EndpointConfig], http: httpx.AsyncClient,
                                now: datetime | None = None) -> list[str]:  # fmt: skip
    """Sample every endpoint's counters once; returns notes (what was recorded or why not)."""
    notes = []
    ts = now or datetime.now(UTC)
    for ep in endpoints:
        try:
            got = await scrape_counters(ep, http)
        except httpx.HTTPError as exc:
            notes.append(f"{ep.name}: /metrics not readable: {redact(str(exc))[:200]}")
            continue
        if got is None:
            why = "Ollama exports no token counters" if ep.api == "ollama" else "no token counters in /metrics"
            notes.append(f"{ep.name}: {why}")
            continue
        append_counter_sample(state_dir, ep.name, ts, *got)
        notes.append(f"{ep.name}: counters prompt={got[0]:.0f} output={got[1]:.0f}")
    return notes


def count_tokens(sources: list[TokenSource], state_dir, start: datetime, end: datetime) -> list[TokenCount]:
    out = []
    for src in sources:
        if src.kind == "log":
            out.append(tokens_from_log(src, start, end))
        else:
            samples = read_counter_samples(state_dir, src.endpoint)
            out.append(counter_tokens(samples, start, end, f"metrics {src.endpoint}"))
    return out


def token_coverage_notes(endpoints: list[EndpointConfig], sources: list[TokenSource]) -> list[str]:
    """For each endpoint whose server exports no token counters (Ollama), what the review used instead."""
    notes = []
    logs = [s.path for s in sources if s.kind == "log"]
    for ep in endpoints:
        if ep.api != "ollama" or any(s.kind == "metrics" and s.endpoint == ep.name for s in sources):
            continue
        if logs:
            notes.append(f"{ep.name}: Ollama exports no token counters; its tokens are counted from the request "
                         f"log(s) {', '.join(logs)} (prompt_eval_count / eval_count per request)")  # fmt: skip
        else:
            notes.append(f"{ep.name}: Ollama exports no token counters and no 'log' token source is configured: "
                         "its tokens are NOT in this review (add [[cost.token_sources]] kind = \"log\")")  # fmt: skip
    return notes
