"""Disk usage: same numbers as df, errors as entries, alerts above the threshold."""

from __future__ import annotations

import math
import subprocess

from llm_upkeep.checks import Status
from llm_upkeep.disk import DiskUsage, check_disk, measure_disk


def _df(path: str) -> tuple[int, int, int, int]:
    out = subprocess.run(
        ["df", "-P", "-B1", path], capture_output=True, text=True, check=True, timeout=10
    ).stdout.splitlines()[-1]
    fields = out.split()
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4].rstrip("%"))


def test_matches_df(tmp_path):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"x" * 1000)
    for path in (str(tmp_path), str(f), "/"):
        (u,) = measure_disk([path])
        size, used, avail, use_pct = _df(path)
        assert u.error is None
        assert u.total_bytes == size
        # Other processes write meanwhile: allow 64 MiB of drift between the two readings.
        assert abs(u.used_bytes - used) < 64 * 1024**2
        assert abs(u.free_bytes - avail) < 64 * 1024**2
        assert abs(math.ceil(u.percent) - use_pct) <= 1
        assert u.percent == 100.0 * u.used_bytes / (u.used_bytes + u.free_bytes)


def test_missing_path_is_an_error_entry_not_an_exception(tmp_path):
    missing = str(tmp_path / "no" / "such" / "dir")
    usages = measure_disk([missing, str(tmp_path)])
    assert usages[0].path == missing
    assert usages[0].error and "FileNotFoundError" in usages[0].error
    assert usages[0].percent is None
    assert usages[1].error is None and usages[1].percent is not None
    results = check_disk(usages, 85)
    assert results[0].status == Status.ERROR and "FileNotFoundError" in results[0].detail
    assert results[1].status in (Status.OK, Status.ALERT)


def test_check_thresholds():
    gib = 1024**3

    def usage(used, free):
        return DiskUsage(
            path="/models",
            total_bytes=used + free,
            used_bytes=used,
            free_bytes=free,
            percent=100.0 * used / (used + free),
        )

    ok, edge, over = check_disk(
        [usage(80 * gib, 20 * gib), usage(85 * gib, 15 * gib), usage(86 * gib, 14 * gib)], 85
    )
    assert (ok.check, ok.target, ok.status, ok.value, ok.unit, ok.threshold) == (
        "disk_usage",
        "/models",
        Status.OK,
        80.0,
        "%",
        85,
    )
    assert edge.status == Status.OK  # df shows 85%, and `-gt 85` is false
    assert over.status == Status.ALERT and over.value == 86.0
    assert "86.0 GiB used, 14.0 GiB free of 100.0 GiB" in over.detail
    # A hair over the threshold is over it (df would print 86%).
    (hair,) = check_disk([usage(85 * gib + 1024**2, 15 * gib - 1024**2)], 85)
    assert hair.status == Status.ALERT
    assert check_disk([], 85) == []
