"""History of what the servers said and what each GPU process held, in the history database
(state_dir/history.sqlite), for preemption increases, token increases and the leak trend.

Own tables, created on first use: the shared schema in llm_upkeep/history.py stays as it is.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llm_upkeep import history
from llm_upkeep.servermetrics.parse import ServerMetrics
from llm_upkeep.servermetrics.scrape import MetricsReading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS server_metrics_samples (
    ts TEXT NOT NULL, host TEXT NOT NULL, endpoint TEXT NOT NULL, dialect TEXT,
    kv_cache_usage REAL, running REAL, waiting REAL, preemptions REAL,
    prompt_tokens REAL, generation_tokens REAL
);
CREATE INDEX IF NOT EXISTS server_metrics_samples_ts ON server_metrics_samples(endpoint, ts);
CREATE TABLE IF NOT EXISTS gpu_process_samples (
    ts TEXT NOT NULL, host TEXT NOT NULL, gpu INTEGER NOT NULL, uuid TEXT, pid INTEGER NOT NULL,
    process TEXT, used_bytes INTEGER, total_bytes INTEGER, running REAL, preallocating INTEGER
);
CREATE INDEX IF NOT EXISTS gpu_process_samples_ts ON gpu_process_samples(host, ts);
"""


def _connect(state_dir: str | Path):
    conn = history.connect(state_dir)
    conn.executescript(_SCHEMA)
    return conn


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def append_readings(state_dir: str | Path, readings: list[MetricsReading], host: str = "local") -> int:
    rows = [
        (
            _iso(r.at), host, r.endpoint, r.metrics.dialect, r.metrics.kv_cache_usage, r.metrics.running,
            r.metrics.waiting, r.metrics.preemptions, r.metrics.prompt_tokens, r.metrics.generation_tokens,
        )
        for r in readings
        if r.status == "ok" and r.metrics is not None and r.metrics.dialect
    ]  # fmt: skip
    if rows:
        with closing(_connect(state_dir)) as conn, conn:
            conn.executemany("INSERT INTO server_metrics_samples VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def last_reading(
    state_dir: str | Path, endpoint: str, before: datetime | None = None
) -> ServerMetrics | None:
    """The latest stored reading of an endpoint (before ``before``), for counter increases."""
    q = "SELECT * FROM server_metrics_samples WHERE endpoint = ? AND ts < ? ORDER BY ts DESC LIMIT 1"
    with closing(_connect(state_dir)) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(q, (endpoint, _iso(before) if before else "9999")).fetchone()
    if row is None:
        return None
    return ServerMetrics(
        dialect=row["dialect"], kv_cache_usage=row["kv_cache_usage"], running=row["running"],
        waiting=row["waiting"], preemptions=row["preemptions"], prompt_tokens=row["prompt_tokens"],
        generation_tokens=row["generation_tokens"],
    )  # fmt: skip


def append_process_samples(
    state_dir: str | Path, snapshot, *, host: str = "local", running: float | None = None,
    preallocating: bool = False,
) -> int:  # fmt: skip
    """One row per (GPU, process) of an NVML snapshot, with the load at that moment."""
    if snapshot is None or snapshot.status != "ok":
        return 0
    ts = _iso(snapshot.taken_at)
    rows = [
        (ts, host, g.index, g.uuid, p["pid"], p["name"], p["used_bytes"], g.memory_total_bytes, running,
         int(preallocating))
        for g in snapshot.gpus
        for p in g.processes
        if p.get("used_bytes") is not None
    ]  # fmt: skip
    if rows:
        with closing(_connect(state_dir)) as conn, conn:
            conn.executemany("INSERT INTO gpu_process_samples VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def read_process_samples(state_dir: str | Path, host: str, since: datetime) -> pd.DataFrame:
    q = "SELECT * FROM gpu_process_samples WHERE host = ? AND ts >= ? ORDER BY ts"
    with closing(_connect(state_dir)) as conn:
        df = pd.read_sql_query(q, conn, params=(host, _iso(since)))
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    return df
