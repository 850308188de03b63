"""Measure log rotation: throughput and peak memory on one large log, time for many small ones.

Usage: .venv/bin/python benchmarks/logrotate_bench.py [--size-mb 512] [--files 1000] [--dir /tmp] [--level 6]
Prints one JSON object. Memory must not grow with file size (streaming); compare --size-mb runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llm_upkeep.config import LogsConfig  # noqa: E402
from llm_upkeep.logrotate import rotate_logs, scan_writers  # noqa: E402

DAY = 86400


def _age(path: str, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def _write_jsonl(path: str, size: int, seed: int) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    written = 0
    with open(path, "w") as f:
        buf: list[str] = []
        while written < size:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
            line = f'{{"ts": {rng.random() * 1e9:.3f}, "model": "llama3:8b", "prompt": "{text}"}}\n'
            buf.append(line)
            written += len(line)
            if len(buf) >= 1000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--level", type=int, default=6, help="gzip level (6 is gzip(1)'s default)")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="logrotate-bench-", dir=a.dir)
    out: dict = {}
    try:
        big_dir = os.path.join(root, "big")
        os.mkdir(big_dir)
        big = os.path.join(big_dir, "audit.jsonl")
        _write_jsonl(big, a.size_mb * 1024 * 1024, 1)
        _age(big, 60)
        size = os.path.getsize(big)
        rss_before = _maxrss_mb()
        t0 = time.perf_counter()
        rep = rotate_logs(LogsConfig(dirs=[big_dir], min_free_bytes=0), compresslevel=a.level)
        dt = time.perf_counter() - t0
        assert rep.files_compressed == 1, rep
        out["level"] = a.level
        out["big_file_mb"] = round(size / 2**20, 1)
        out["big_seconds"] = round(dt, 2)
        out["big_mb_per_s"] = round(size / 2**20 / dt, 1)
        out["big_ratio"] = round(rep.compressed[0]["compressed_bytes"] / size, 3)
        out["maxrss_mb_before"] = round(rss_before, 1)
        out["maxrss_mb_after"] = round(_maxrss_mb(), 1)

        small_dir = os.path.join(root, "small")
        os.mkdir(small_dir)
        for i in range(a.files):
            p = os.path.join(small_dir, f"audit-{i:05d}.jsonl")
            _write_jsonl(p, 4096, i)
            _age(p, 31 + i % 300)
        t0 = time.perf_counter()
        rep = rotate_logs(LogsConfig(dirs=[small_dir], min_free_bytes=0), compresslevel=a.level)
        dt = time.perf_counter() - t0
        assert rep.files_compressed == a.files and not rep.errors, rep.errors[:3]
        out["small_files"] = a.files
        out["small_seconds"] = round(dt, 2)
        out["small_ms_per_file"] = round(1000 * dt / a.files, 2)

        fds = sum(
            len(os.listdir(f"/proc/{p}/fd")) for p in os.listdir("/proc") if p.isdigit() and _readable(p)
        )
        t0 = time.perf_counter()
        for _ in range(10):
            scan_writers(set())
        out["scan_writers_ms"] = round((time.perf_counter() - t0) * 100, 2)
        out["open_fds_on_host"] = fds
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))


def _readable(pid: str) -> bool:
    try:
        os.listdir(f"/proc/{pid}/fd")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
