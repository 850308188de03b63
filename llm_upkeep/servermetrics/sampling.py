"""Hourly sampling of what the servers say (with the GPU sampling): token counters for the cost
review, the readings for preemption increases, and each GPU process's memory at the load of that
moment for the leak rule.

Why hourly and not when the cost review runs: a counter read once a month counts nothing in the
first month and loses everything before a restart; read every hour, each restart costs at most
the tokens of one hour's tail (Prometheus' increase() has the same blind spot).
"""

from __future__ import annotations

from datetime import UTC, datetime

from llm_upkeep.clients import make_http_client
from llm_upkeep.config import Config
from llm_upkeep.cost.tokens import append_counter_sample
from llm_upkeep.servermetrics import store
from llm_upkeep.servermetrics.daily import read_servers
from llm_upkeep.servermetrics.leak import host_running, preallocating_endpoints


async def sample_servers(cfg: Config, state_dir: str, snapshot=None, host: str = "local",
                         now: datetime | None = None) -> list[str]:  # fmt: skip
    """Scrape every endpoint of this host once and record what it said; returns one note per endpoint."""
    mine = [e for e in cfg.endpoints if e.host in (host, "local")]  # a fleet host: its own servers' load
    async with make_http_client() as http:
        readings = await read_servers(cfg, mine, http)
    ts = now or datetime.now(UTC)
    notes = []
    for r in readings:
        m = r.metrics
        if m is not None and (m.prompt_tokens is not None or m.generation_tokens is not None):
            append_counter_sample(
                state_dir, r.endpoint, ts, m.prompt_tokens or 0.0, m.generation_tokens or 0.0
            )
            notes.append(f"{r.endpoint}: token counters prompt={m.prompt_tokens or 0:.0f} "
                         f"output={m.generation_tokens or 0:.0f}")  # fmt: skip
        else:
            notes.append(f"{r.endpoint}: no token counters ({r.status}: {r.detail})")
    store.append_readings(state_dir, readings, host)
    if snapshot is not None and snapshot.status == "ok":
        prealloc = preallocating_endpoints(mine, readings, cfg.server_metrics)
        store.append_process_samples(state_dir, snapshot, host=host, running=host_running(readings),
                                     preallocating=bool(prealloc))  # fmt: skip
    return notes
