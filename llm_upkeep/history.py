"""The local history store (SQLite in state_dir): every health check and GPU sample, so the
weekly review and the cost review can ask about trends ("sustained", "per month").

SQLite in WAL mode: appends from concurrent runs are safe, and pandas reads it directly.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from llm_upkeep.checks import CheckResult

DB_NAME = "history.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    ts TEXT NOT NULL, run_id TEXT, flow TEXT, host TEXT,
    check_name TEXT NOT NULL, target TEXT, status TEXT NOT NULL,
    value REAL, value_text TEXT, unit TEXT, threshold REAL, detail TEXT
);
CREATE INDEX IF NOT EXISTS checks_ts ON checks(ts);
CREATE TABLE IF NOT EXISTS gpu_samples (
    ts TEXT NOT NULL, host TEXT NOT NULL, gpu INTEGER NOT NULL, uuid TEXT, name TEXT,
    temperature_c REAL, slowdown_c REAL, shutdown_c REAL,
    memory_used_bytes INTEGER, memory_total_bytes INTEGER, utilization_percent REAL,
    power_w REAL, power_limit_w REAL, energy_mj INTEGER, throttle_reasons TEXT,
    driver_version TEXT, cuda_version TEXT
);
CREATE INDEX IF NOT EXISTS gpu_samples_ts ON gpu_samples(ts);
"""


def db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / DB_NAME


def connect(state_dir: str | Path) -> sqlite3.Connection:
    p = db_path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(p, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    return conn


def _iso(ts: datetime | None) -> str:
    return (ts or datetime.now(UTC)).astimezone(UTC).isoformat()


def append_checks(
    state_dir: str | Path,
    checks: Iterable[CheckResult],
    *,
    flow: str,
    run_id: str | None = None,
    host: str = "local",
    ts: datetime | None = None,
) -> int:
    rows = []
    for c in checks:
        num = c.value if isinstance(c.value, int | float) and not isinstance(c.value, bool) else None
        text = None if num is not None or c.value is None else str(c.value)
        thr = c.threshold if isinstance(c.threshold, int | float) else None
        rows.append(
            (_iso(ts), run_id, flow, host, c.check, c.target, str(c.status), num, text, c.unit, thr, c.detail)
        )
    with closing(connect(state_dir)) as conn, conn:
        conn.executemany("INSERT INTO checks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def _gpu_rows(snapshot) -> list[tuple]:
    ts = _iso(snapshot.taken_at)
    return [
        (
            ts, g.index, g.uuid, g.name, g.temperature_c, g.slowdown_c, g.shutdown_c,
            g.memory_used_bytes, g.memory_total_bytes, g.utilization_percent, g.power_w, g.power_limit_w,
            g.energy_mj, json.dumps(g.throttle_reasons), snapshot.driver_version, snapshot.cuda_version,
        )
        for g in snapshot.gpus
    ]  # fmt: skip


def append_gpu_samples(state_dir: str | Path, snapshot, *, host: str = "local") -> int:
    """Store one NVML snapshot (llm_upkeep.telemetry.GpuSnapshot); a skipped snapshot stores nothing."""
    return append_gpu_snapshots(state_dir, [snapshot], host=host)


def append_gpu_snapshots(state_dir: str | Path, snapshots, *, host: str = "local") -> int:
    """Store many snapshots in one transaction (imports, back-fills); skipped ones store nothing."""
    rows = [(r[0], host, *r[1:]) for s in snapshots if s.status == "ok" for r in _gpu_rows(s)]
    with closing(connect(state_dir)) as conn, conn:
        conn.executemany("INSERT INTO gpu_samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def _read(state_dir: str | Path, table: str, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    if not db_path(state_dir).exists():
        with closing(connect(state_dir)):
            pass
    q = f"SELECT * FROM {table} WHERE ts >= ? AND ts < ? ORDER BY ts"  # noqa: S608 (table is ours)
    lo = _iso(since) if since else "0000"
    hi = _iso(until) if until else "9999"
    with closing(connect(state_dir)) as conn:
        df = pd.read_sql_query(q, conn, params=(lo, hi))
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    return df


def read_checks(
    state_dir: str | Path, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    return _read(state_dir, "checks", since, until)


def read_gpu_samples(
    state_dir: str | Path, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    df = _read(state_dir, "gpu_samples", since, until)
    if not df.empty:
        df["throttle_reasons"] = df["throttle_reasons"].map(lambda s: json.loads(s) if s else [])
    return df


# ---------------------------------------------------------------- reading side: filtered series

SERIES = ("checks", "benchmark", "gpu")
BENCHMARK_PREFIX = "benchmark"


def query_series(
    state_dir: str | Path,
    series: str = "checks",
    *,
    check: str | None = None,
    target: str | None = None,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """One stored series, filtered in SQL: 'checks' (every check row), 'benchmark' (the weekly
    benchmark's summaries) or 'gpu' (GPU samples; target matches 'N' or 'host:N').

    Reading never creates the store: a missing one reads as empty."""
    if series not in SERIES:
        raise ValueError(f"unknown series {series!r} (one of {', '.join(SERIES)})")
    if not db_path(state_dir).exists():
        return pd.DataFrame()
    table = "gpu_samples" if series == "gpu" else "checks"
    where, params = ["ts >= ?", "ts < ?"], [_iso(since) if since else "0000", _iso(until) if until else "9999"]
    if series == "benchmark":
        where.append("(check_name = ? OR check_name LIKE ? ESCAPE '!')")
        params += [BENCHMARK_PREFIX, BENCHMARK_PREFIX + "!_%"]
    if check and series != "gpu":
        where.append("check_name = ?")
        params.append(check)
    if host:
        where.append("host = ?")
        params.append(host)
    if target is not None:
        if series == "gpu":
            h, _, idx = target.rpartition(":")
            where.append("CAST(gpu AS TEXT) = ?" + (" AND host = ?" if h else ""))
            params += [idx, h] if h else [idx]
        else:
            where.append("target = ?")
            params.append(target)
    q = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY ts"  # noqa: S608 (names are ours)
    with closing(connect(state_dir)) as conn:
        df = pd.read_sql_query(q, conn, params=params)
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    return df


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'7d', '12h', '3w' (ago) or an ISO date/time (UTC when it has no offset)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw])\s*", text)
    if m:
        n, u = float(m.group(1)), m.group(2)
        return now - timedelta(**{{"h": "hours", "d": "days", "w": "weeks"}[u]: n})
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date, time or age (e.g. 2026-11-01, 7d, 12h): {text!r}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
