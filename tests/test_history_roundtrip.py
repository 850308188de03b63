"""History round trips: what the flows store is what the reviews read back, field for field.

Checks and GPU samples go through SQLite (text timestamps, REAL/INTEGER/TEXT columns, JSON for
lists); each test writes values that a lossy store would change (floats, huge integers, None,
text values, a non-UTC timestamp, window edges) and compares every column."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from llm_upkeep import history
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.telemetry import GpuReading, GpuSnapshot

T0 = datetime(2026, 11, 1, 6, 0, 0, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def missing(x) -> bool:
    """pandas reads SQL NULL as None or NaN depending on the column's other values."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def same(got, want) -> bool:
    return missing(got) if want is None else got == want


def test_checks_round_trip_every_field(tmp_path):
    checks = [
        CheckResult(check="ttft", target="a", status=Status.ALERT, value=12.345678901, unit="s", threshold=10,
                    detail="over 10 s: 12.3 s"),
        CheckResult(check="gpu_ecc", target="0", status=Status.OK, value=2**40, unit="errors"),
        CheckResult(check="endpoint_up", target="b", status=Status.ERROR, value=None, detail="refused"),
        CheckResult(check="driver_version", target="host", status=Status.WARN, value="550.54.15"),
    ]  # fmt: skip
    # The same instant written in another timezone reads back as that instant, in UTC.
    assert history.append_checks(tmp_path, checks, flow="daily-health", run_id="run-1", host="gpu-a",
                                 ts=T0.astimezone(CEST)) == 4  # fmt: skip
    df = history.read_checks(tmp_path)
    assert len(df) == 4
    rows = df.to_dict("records")
    for row, c in zip(rows, checks, strict=True):
        assert row["ts"].to_pydatetime() == T0 and row["ts"].tzinfo is not None
        assert (row["run_id"], row["flow"], row["host"]) == ("run-1", "daily-health", "gpu-a")
        assert (row["check_name"], row["target"], row["status"]) == (c.check, c.target, str(c.status))
        assert same(row["unit"], c.unit) and same(row["detail"], c.detail), row
    assert rows[0]["value"] == 12.345678901 and rows[0]["threshold"] == 10.0
    assert rows[1]["value"] == 2**40  # exact: below 2**53
    assert missing(rows[2]["value"]) and missing(rows[2]["value_text"])
    assert missing(rows[3]["value"]) and rows[3]["value_text"] == "550.54.15"
    assert missing(rows[2]["threshold"])
    assert {r["status"] for r in rows} == {"alert", "ok", "error", "warn"}


def test_check_windows_are_half_open_and_runs_stay_apart(tmp_path):
    for day in range(3):
        history.append_checks(tmp_path, [CheckResult(check="ttft", target="a", status=Status.OK, value=day)],
                              flow="daily-health", run_id=f"r{day}", ts=T0 + timedelta(days=day))  # fmt: skip
    window = history.read_checks(tmp_path, since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))
    assert window["run_id"].tolist() == ["r1"]  # since is inclusive, until exclusive
    assert history.read_checks(tmp_path, since=T0)["value"].tolist() == [0.0, 1.0, 2.0]
    # A run on a host in another timezone, 30 min after T0: outside a window that starts at +45 min,
    # however its local clock reads.
    history.append_checks(tmp_path, [CheckResult(check="ttft", target="b", status=Status.OK, value=9)],
                          flow="daily-health", run_id="cest", ts=(T0 + timedelta(minutes=30)).astimezone(CEST))  # fmt: skip
    late = history.read_checks(tmp_path, since=T0 + timedelta(minutes=45), until=T0 + timedelta(hours=3))
    assert late["run_id"].tolist() == []


def _snapshot(taken_at: datetime) -> GpuSnapshot:
    full = GpuReading(
        index=0, name="NVIDIA H100 80GB HBM3", uuid="GPU-3b6a3a5c-1f0e-4c1e-9a8b-0d7f6e5d4c3b",
        memory_used_bytes=85_899_345_920, memory_total_bytes=85_520_809_984 + 2**33, utilization_percent=97.5,
        temperature_c=71.0, slowdown_c=87.0, shutdown_c=92.0, power_w=612.345, power_limit_w=700.0,
        energy_mj=2**45 + 7, throttle_reasons=["sw_power_cap", "sync_boost"],
    )  # fmt: skip
    sparse = GpuReading(index=1, name="NVIDIA L4", memory_total_bytes=24 * 1024**3)  # consumer fields absent
    return GpuSnapshot(status="ok", taken_at=taken_at, driver_version="550.54.15", cuda_version="12.4",
                       gpus=[full, sparse])  # fmt: skip


GPU_FIELDS = ("name", "uuid", "temperature_c", "slowdown_c", "shutdown_c", "memory_used_bytes",
              "memory_total_bytes", "utilization_percent", "power_w", "power_limit_w", "energy_mj")  # fmt: skip


def test_gpu_samples_round_trip_every_field(tmp_path):
    snap = _snapshot(T0.astimezone(CEST))
    assert history.append_gpu_samples(tmp_path, snap, host="gpu-a") == 2
    df = history.read_gpu_samples(tmp_path)
    rows = sorted(df.to_dict("records"), key=lambda r: r["gpu"])
    assert len(rows) == 2
    for row, g in zip(rows, snap.gpus, strict=True):
        assert row["ts"].to_pydatetime() == T0
        assert (row["host"], row["gpu"]) == ("gpu-a", g.index)
        assert (row["driver_version"], row["cuda_version"]) == ("550.54.15", "12.4")
        for f in GPU_FIELDS:
            assert same(row[f], getattr(g, f)), (f, row[f], getattr(g, f))
        assert row["throttle_reasons"] == g.throttle_reasons
    assert rows[0]["energy_mj"] == 2**45 + 7  # the energy counter is exact, for the cost review


def test_skipped_snapshots_store_nothing_and_many_go_in_one_call(tmp_path):
    assert history.append_gpu_samples(tmp_path, GpuSnapshot(status="skipped", reason="no NVML")) == 0
    assert history.read_gpu_samples(tmp_path).empty
    snaps = [_snapshot(T0 + timedelta(minutes=5 * i)) for i in range(4)]
    snaps.insert(2, GpuSnapshot(status="error", reason="nvmlInit failed", taken_at=T0))
    assert history.append_gpu_snapshots(tmp_path, snaps, host="gpu-b") == 8
    df = history.read_gpu_samples(tmp_path, since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=15))
    assert sorted(df["ts"].dt.minute.tolist()) == [5, 5, 10, 10] and set(df["host"]) == {"gpu-b"}
