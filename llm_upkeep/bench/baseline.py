"""Benchmark runs and pinned baselines, as Parquet files in state_dir.

Layout (state_dir/benchmarks/):
- runs/<run_id>.parquet      every run, one row per request (warm-up included, flagged)
- baselines/<run_id>.parquet the runs pinned as baselines (copies: pruning runs never loses one)
- baselines.parquet          the index: one row per pin, keyed by endpoint (target + API),
                             model digest, server version, suite hash and settings key

A baseline is looked up by endpoint, API, suite hash and settings key; among those, one with the
same model digest and server version is an exact match. Otherwise the latest pin is used and the
comparison says the model (or server) changed. A run is pinned automatically only when its
endpoint has no baseline for this suite at all and no pinned baseline of that endpoint has a
different model digest: a new model never silently becomes the baseline.

Every file is written to a temp file, fsynced, read back and verified, then os.replace()d.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from llm_upkeep.bench.runner import RequestRecord, RunResult

META_KEY = b"llm_upkeep.run"
INDEX_COLUMNS = [
    "baseline_id", "target", "api", "url", "model", "model_digest", "digest_source", "server_version",
    "suite_name", "suite_hash", "settings_key", "run_started_at", "pinned_at", "reason",
]  # fmt: skip


class BaselineError(Exception):
    """A baseline file that cannot be read or written (names the file)."""


class BaselineRef(BaseModel):
    """One pinned baseline, and how well it matches the run being judged."""

    baseline_id: str = Field(description="Run id of the pinned run.")
    pinned_at: datetime = Field(description="When it was pinned.")
    reason: str = Field(description="first-run | save-baseline | api.")
    model_digest: str = Field(description="Model digest of the baseline run.")
    server_version: str = Field(description="Server version of the baseline run.")
    run_started_at: datetime = Field(description="When the baseline run ran.")
    match: str = Field(
        default="exact", description="exact | model_changed | server_changed | model_and_server_changed."
    )


def bench_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / "benchmarks"


@contextlib.contextmanager
def _locked(state_dir: str | Path) -> Iterator[None]:
    d = bench_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_table_verified(table: pa.Table, path: Path) -> None:
    """Temp file + fsync + read-back check + os.replace: the old file survives any failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        back = pq.read_table(tmp)
        if back.num_rows != table.num_rows or back.schema.names != table.schema.names:
            raise BaselineError(f"{path}: written file does not read back the same")
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except (OSError, pa.ArrowException) as exc:
        raise BaselineError(f"{path}: cannot write: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ------------------------------------------------------------------ run <-> table


def run_to_frame(run: RunResult) -> pd.DataFrame:
    """One row per request, with the run's key columns on every row (pd.read_parquet of a folder works)."""
    rows = []
    for r in run.requests:
        d = r.model_dump()
        d["checks"] = json.dumps(d["checks"])
        rows.append(d)
    df = pd.DataFrame(rows, columns=list(RequestRecord.model_fields))
    key = {
        "run_id": run.run_id, "target": run.target, "api": run.api, "model": run.identity.model,
        "model_digest": run.identity.model_digest, "server_version": run.identity.server_version,
        "suite_hash": run.suite_hash, "settings_key": run.settings.key,
        "run_started_at": run.started_at.isoformat(),
    }  # fmt: skip
    for k, v in key.items():
        df.insert(0, k, v)
    return df


def _run_meta(run: RunResult) -> bytes:
    return run.model_dump_json(exclude={"requests"}).encode()


def run_to_table(run: RunResult) -> pa.Table:
    df = run_to_frame(run)
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: _run_meta(run)})


def run_from_table(table: pa.Table, source: str = "<table>") -> RunResult:
    meta = (table.schema.metadata or {}).get(META_KEY)
    if not meta:
        raise BaselineError(f"{source}: not a benchmark run file (no run metadata)")
    try:
        head = json.loads(meta)
        df = table.to_pandas()
        reqs = []
        for row in df.to_dict(orient="records"):
            rec = {k: row[k] for k in RequestRecord.model_fields if k in row}
            rec["checks"] = json.loads(rec.get("checks") or "[]")
            rec["itl_s"] = [float(x) for x in (rec.get("itl_s") if rec.get("itl_s") is not None else [])]
            for k, v in list(rec.items()):
                if isinstance(v, float) and pd.isna(v):
                    rec[k] = None
            reqs.append(RequestRecord.model_validate(rec))
        head["requests"] = reqs
        return RunResult.model_validate(head)
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{source}: unreadable benchmark run: {exc}") from None


def read_run_file(path: str | Path) -> RunResult:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    return run_from_table(table, str(path))


def _file_name(run_id: str) -> str:
    """Run ids become file names: only safe characters, never a path."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}", run_id):
        raise BaselineError(f"run id {run_id[:60]!r} is not a safe file name")
    return f"{run_id}.parquet"


def save_run(state_dir: str | Path, run: RunResult) -> Path:
    """Record a run (every run is kept, so any one can be pinned or analysed later)."""
    path = bench_dir(state_dir) / "runs" / _file_name(run.run_id)
    _write_table_verified(run_to_table(run), path)
    return path


# ------------------------------------------------------------------ the baseline index


def read_index(state_dir: str | Path) -> pd.DataFrame:
    path = bench_dir(state_dir) / "baselines.parquet"
    if not path.exists():
        return pd.DataFrame(columns=INDEX_COLUMNS)
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline index: {exc}") from None


def _candidates(index: pd.DataFrame, run: RunResult) -> pd.DataFrame:
    if index.empty:
        return index
    m = (
        (index["target"] == run.target)
        & (index["api"] == run.api)
        & (index["suite_hash"] == run.suite_hash)
        & (index["settings_key"] == run.settings.key)
    )
    return index[m].sort_values("pinned_at")


def find_baseline(state_dir: str | Path, run: RunResult) -> BaselineRef | None:
    """The baseline this run is judged against, or None when there is none for its suite and settings."""
    cands = _candidates(read_index(state_dir), run)
    if cands.empty:
        return None
    same = cands[
        (cands["model_digest"] == run.identity.model_digest)
        & (cands["server_version"] == run.identity.server_version)
    ]
    row = (same if not same.empty else cands).iloc[-1]
    digest_changed = row["model_digest"] != run.identity.model_digest
    server_changed = row["server_version"] != run.identity.server_version
    match = "exact"
    if digest_changed and server_changed:
        match = "model_and_server_changed"
    elif digest_changed:
        match = "model_changed"
    elif server_changed:
        match = "server_changed"
    return BaselineRef(
        baseline_id=row["baseline_id"], pinned_at=row["pinned_at"], reason=row["reason"],
        model_digest=row["model_digest"], server_version=row["server_version"],
        run_started_at=row["run_started_at"], match=match,
    )  # fmt: skip


def load_baseline(state_dir: str | Path, ref: BaselineRef) -> RunResult:
    return read_run_file(bench_dir(state_dir) / "baselines" / _file_name(ref.baseline_id))


def may_auto_pin(state_dir: str | Path, run: RunResult) -> tuple[bool, str]:
    """(allowed, why): only a first run, and never one whose model digest is new to this endpoint."""
    index = read_index(state_dir)
    if not _candidates(index, run).empty:
        return False, "a baseline exists for this endpoint, suite and settings"
    if index.empty:
        return True, "first run"
    mine = index[(index["target"] == run.target) & (index["api"] == run.api)]
    if not mine.empty and run.identity.model_digest not in set(mine["model_digest"]):
        return False, (
            f"model digest {run.identity.model_digest[:19]} differs from every pinned baseline of "
            f"{run.label}; pin it explicitly with --save-baseline"
        )
    return True, "first run of this suite and settings"


def pin_baseline(state_dir: str | Path, run: RunResult, reason: str = "save-baseline") -> BaselineRef:
    """Copy the run into baselines/ and add it to the index (latest pin of a key wins)."""
    if not any(r.ok for r in run.measured()):
        raise BaselineError(f"run {run.run_id} has no successful request; it cannot be a baseline")
    now = datetime.now(UTC)
    with _locked(state_dir):
        _write_table_verified(run_to_table(run), bench_dir(state_dir) / "baselines" / _file_name(run.run_id))
        index = read_index(state_dir)
        row = {
            "baseline_id": run.run_id, "target": run.target, "api": run.api, "url": run.url,
            "model": run.identity.model, "model_digest": run.identity.model_digest,
            "digest_source": run.identity.digest_source, "server_version": run.identity.server_version,
            "suite_name": run.suite_name, "suite_hash": run.suite_hash, "settings_key": run.settings.key,
            "run_started_at": run.started_at.isoformat(), "pinned_at": now.isoformat(), "reason": reason,
        }  # fmt: skip
        index = index[index["baseline_id"] != run.run_id] if not index.empty else index
        new = pd.concat([index, pd.DataFrame([row], columns=INDEX_COLUMNS)], ignore_index=True)
        new = new.astype({c: "string" for c in INDEX_COLUMNS})
        _write_table_verified(
            pa.Table.from_pandas(new, preserve_index=False), bench_dir(state_dir) / "baselines.parquet"
        )
    return BaselineRef(
        baseline_id=run.run_id, pinned_at=now, reason=reason, model_digest=run.identity.model_digest,
        server_version=run.identity.server_version, run_started_at=run.started_at,
    )  # fmt: skip


def describe_baseline(
    ref: BaselineRef | None, *, pinned_now: bool = False, note: str = ""
) -> dict[str, Any] | None:
    """The JSON 'baseline' object of one endpoint (None when there is no baseline)."""
    if ref is None:
        return None
    return {
        "run_id": ref.baseline_id,
        "pinned_at": ref.pinned_at.isoformat(),
        "reason": ref.reason,
        "match": ref.match,
        "model_digest": ref.model_digest,
        "server_version": ref.server_version,
        "run_started_at": ref.run_started_at.isoformat(),
        "pinned_now": pinned_now,
        "note": note,
    }
