"""Hashing throughput of `models verify` against `sha256sum` on the same files.

    .venv/bin/python benchmarks/verify.py [--gb 4] [--dir DIR] [--repeats 3] [--json]

Writes --gb of incompressible files shaped like a model store (one large weights blob, a few
medium ones, small config/template blobs), then hashes them with:
  - llm_upkeep.models.hashing.Hasher (thread pool, 4 MiB reads), with the default workers and with 1,
  - `sha256sum` (coreutils, one process, one core),
  - `openssl dgst -sha256` when installed (one process; same SHA code as Python's hashlib),
each cold (the files' pages dropped from the page cache with POSIX_FADV_DONTNEED before every
run, so the disk is read) and warm (files cached: pure hashing speed). Runs are interleaved and
the median of --repeats is reported. Every tool must produce the same digests. The files are
deleted afterwards, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_upkeep.models.hashing import Hasher, default_workers  # noqa: E402

CHUNK = 64 * 1024 * 1024


def make_files(d: Path, total: int) -> list[Path]:
    """One big blob (half), three medium (an eighth each), and small ones: a model store's shape."""
    sizes = [total // 2] + [total // 8] * 3 + [4096, 485, 12_000]
    sizes.append(max(0, total - sum(sizes)))
    rng = np.random.default_rng(7)
    out = []
    for i, n in enumerate(s for s in sizes if s > 0):
        p = d / f"blob-{i:02d}"
        with open(p, "wb") as f:
            left = n
            while left:
                k = min(CHUNK, left)
                f.write(rng.bytes(k))
                left -= k
            f.flush()
            os.fsync(f.fileno())
        out.append(p)
    return out


def drop_cache(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_cache(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(CHUNK):
                pass


def run_ours(paths: list[Path], workers: int) -> tuple[float, dict[str, str]]:
    t0 = time.perf_counter()
    with Hasher(workers) as h:
        res = h.hash_many(paths)
    dt = time.perf_counter() - t0
    return dt, {Path(k).name: v.sha256 for k, v in res.items()}


def run_cmd(cmd: list[str], paths: list[Path]) -> tuple[float, dict[str, str]]:
    t0 = time.perf_counter()
    p = subprocess.run([*cmd, *map(str, paths)], capture_output=True, text=True, check=True, timeout=3600)
    dt = time.perf_counter() - t0
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("SHA2-256(") or line.startswith("SHA256("):  # openssl: SHA2-256(path)= hex
            name, hx = line.split(")= ")
            out[Path(name.split("(", 1)[1]).name] = hx.strip()
        else:
            hx, name = line.split(maxsplit=1)
            out[Path(name.lstrip("*")).name] = hx
    return dt, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=4.0, help="total size of the files (GB, 1e9 bytes)")
    ap.add_argument("--dir", default=None, help="where to write them (default: a temp dir under /tmp)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    total = int(args.gb * 1e9)
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < total * 1.2:
        print(f"not enough free disk under {base}: {free / 1e9:.1f} GB free, {total / 1e9:.1f} GB needed",
              file=sys.stderr)  # fmt: skip
        return 2
    d = Path(tempfile.mkdtemp(prefix="verify-bench-", dir=base))
    try:
        t0 = time.perf_counter()
        paths = make_files(d, total)
        size = sum(p.stat().st_size for p in paths)
        setup_s = time.perf_counter() - t0
        workers = default_workers()
        tools: dict[str, callable] = {
            f"llm-upkeep ({workers} threads)": lambda: run_ours(paths, workers),
            "llm-upkeep (1 thread)": lambda: run_ours(paths, 1),
            "sha256sum": lambda: run_cmd(["sha256sum"], paths),
        }
        if shutil.which("openssl"):
            tools["openssl dgst -sha256"] = lambda: run_cmd(["openssl", "dgst", "-sha256"], paths)
        times: dict[str, dict[str, list[float]]] = {k: {"cold": [], "warm": []} for k in tools}
        digests: dict[str, dict[str, str]] = {}
        for mode in ("cold", "warm"):
            for _ in range(args.repeats):
                for name, fn in tools.items():
                    if mode == "cold":
                        drop_cache(paths)
                    else:
                        warm_cache(paths)
                    dt, dg = fn()
                    times[name][mode].append(dt)
                    digests[name] = dg
        ref = digests["sha256sum"]
        agree = all(dg == ref for dg in digests.values())
        rows = []
        for name in tools:
            row = {"tool": name}
            for mode in ("cold", "warm"):
                med = statistics.median(times[name][mode])
                row[f"{mode}_s"] = round(med, 3)
                row[f"{mode}_mb_s"] = round(size / 1e6 / med, 1)
            rows.append(row)
        ours = rows[0]
        sums = next(r for r in rows if r["tool"] == "sha256sum")
        result = {
            "bytes": size, "files": len(paths), "workers": workers, "cpus": os.cpu_count(), "repeats": args.repeats,
            "setup_s": round(setup_s, 1), "digests_agree": agree, "rows": rows,
            "ratio_cold": round(sums["cold_s"] / ours["cold_s"], 2),
            "ratio_warm": round(sums["warm_s"] / ours["warm_s"], 2),
            "load_avg": os.getloadavg(),
        }  # fmt: skip
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{size / 1e9:.2f} GB in {len(paths)} files, {workers} worker threads, {os.cpu_count()} CPUs, "
                  f"median of {args.repeats}; load average {', '.join(f'{x:.1f}' for x in result['load_avg'])}")  # fmt: skip
            print(f"{'tool':<26} {'cold s':>8} {'cold MB/s':>10} {'warm s':>8} {'warm MB/s':>10}")
            for r in rows:
                print(f"{r['tool']:<26} {r['cold_s']:>8.2f} {r['cold_mb_s']:>10.0f} {r['warm_s']:>8.2f} "
                      f"{r['warm_mb_s']:>10.0f}")  # fmt: skip
            print(f"ratio sha256sum time / llm-upkeep time: cold {result['ratio_cold']}x, warm {result['ratio_warm']}x;"
                  f" digests agree: {agree}")  # fmt: skip
        return 0 if agree else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
