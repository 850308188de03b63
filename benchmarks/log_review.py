"""Log review throughput: MB/s of the weekly-review log scan against `grep -c` on the same files,
and its peak memory.

    .venv/bin/python benchmarks/log_review.py                 # 1 GiB of mixed logs (generated once)
    .venv/bin/python benchmarks/log_review.py --size-mb 200   # smaller
    .venv/bin/python benchmarks/log_review.py --json

The files are generated into --dir (default /tmp/llm-upkeep-logbench) and reused when their size
matches: Ollama server log (Gin request lines + leveled lines), vLLM log (access + stats lines),
a JSONL request log (.gz) and a kernel log, with about 0.1 % failure lines of every class.
Every line is dated inside the review week, so every chunk is searched for incidents (the worst
case; lines from the baseline weeks only have their requests counted).

The scan runs in a fresh child process, so its peak RSS (getrusage) is the scanner's own;
a second child measures the peak of Python allocations with tracemalloc.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEEK_END = datetime(2026, 11, 30, tzinfo=UTC)
GREP_PATTERN = "timeout|timed out|refused|out of memory|cuda error|xid|panic|fault|killed| 5[0-9][0-9] "

# ---------------------------------------------------------------- generation


def _failures(ts: datetime, i: int) -> list[str]:
    return [
        f'time={ts:%Y-%m-%dT%H:%M:%S}.000Z level=ERROR source=server.go:612 msg="llama runner request failed" '
        f'error="timed out waiting for llama runner to respond after {30 + i % 60}s"\n',
        f"ERROR {ts:%m-%d %H:%M:%S} [engine.py:160] torch.OutOfMemoryError: CUDA out of memory. Tried to "
        f"allocate {1 + i % 7}.00 GiB\n",
        f'[GIN] {ts:%Y/%m/%d - %H:%M:%S} | 500 |   {i % 9}.201s |  10.0.0.{i % 250} | POST     "/api/chat"\n',
        f'time={ts:%Y-%m-%dT%H:%M:%S}.000Z level=ERROR msg="post predict" error="dial tcp 127.0.0.1:{40000 + i % 999}: '
        f'connect: connection refused"\n',
        f"ERROR {ts:%m-%d %H:%M:%S} [worker.py:88] RuntimeError: CUDA error: an illegal memory access was encountered\n",
    ]


def _ollama_line(i: int, ts: datetime) -> str:
    if i % 1000 == 999:
        return _failures(ts, i)[i % 5]
    if i % 20 == 0:
        return (f'time={ts:%Y-%m-%dT%H:%M:%S}.000Z level=INFO source=server.go:{i % 900} '
                f'msg="llm request" model=llama3 tokens={i % 500}\n')  # fmt: skip
    return (f"[GIN] {ts:%Y/%m/%d - %H:%M:%S} | {200 if i % 97 else 400} | {(i % 9000) / 1000:>10.6f}s"
            f' | {"10.0." + str(i % 4) + "." + str(i % 250):>15} | POST     "/api/chat"\n')  # fmt: skip


def _vllm_line(i: int, ts: datetime) -> str:
    if i % 1000 == 500:
        return _failures(ts, i)[(i // 1000) % 5]
    if i % 50 == 0:
        return (f"INFO {ts:%m-%d %H:%M:%S} [loggers.py:116] Engine 000: Avg prompt throughput: {i % 900}.0 "
                f"tokens/s, Running: {i % 8} reqs, GPU KV cache usage: {i % 90}.0%\n")  # fmt: skip
    return (f'INFO:     10.0.1.{i % 250}:{30000 + i % 30000} - "POST /v1/chat/completions HTTP/1.1" '
            f"{200 if i % 113 else 503} OK\n")  # fmt: skip


def _jsonl_line(i: int, ts: datetime) -> str:
    err = ', "error": "upstream timeout"' if i % 1500 == 7 else ""
    status = 504 if err else (200 if i % 211 else 502)
    return (f'{{"ts": "{ts:%Y-%m-%dT%H:%M:%S}.{i % 1000:03d}Z", "request_id": "{i:032x}", "client": '
            f'"10.0.2.{i % 250}", "model": "llama3:8b", "status": {status}, "latency_ms": {i % 9000}, '
            f'"prompt_tokens": {i % 2000}{err}}}\n')  # fmt: skip


def _write(path: Path, line, target: int, t0: datetime, span_s: float, gz: bool = False) -> None:
    """About `target` bytes of lines spread evenly over the span (line count from a sample of lengths)."""
    avg = sum(len(line(i, t0)) for i in range(5000)) / 5000
    n = int(target / avg)
    step = span_s / n
    f = gzip.open(path, "wt", compresslevel=1) if gz else open(path, "w", buffering=1 << 20)
    with f:
        for i in range(n):
            f.write(line(i, t0 + timedelta(seconds=i * step)))


def _write_kernel(path: Path, t0: datetime) -> None:
    with open(path, "w") as f:
        for i in range(2000):
            ts = t0 + timedelta(minutes=5 * i)
            msg = ("NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
                   if i == 1000 else "nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver")  # fmt: skip
            f.write(f"{ts:%b} {ts.day:>2} {ts:%H:%M:%S} gpu-host kernel: [{i * 300.0:12.6f}] {msg}\n")


def generate(d: Path, size_mb: int) -> list[Path]:
    """Plain ollama + vllm logs, a .gz JSONL log and a kernel log; reused when sizes match."""
    d.mkdir(parents=True, exist_ok=True)
    marker = d / "SIZE"
    files = [d / "ollama-server.log", d / "vllm.log", d / "requests.jsonl.gz", d / "kern.log"]
    if marker.exists() and marker.read_text() == str(size_mb) and all(f.exists() for f in files):
        return files
    total = size_mb * 1024 * 1024
    t0 = WEEK_END - timedelta(days=7) + timedelta(minutes=1)
    span = 7 * 86400 - 120.0
    t = time.monotonic()
    _write(files[0], _ollama_line, int(total * 0.45), t0, span)
    _write(files[1], _vllm_line, int(total * 0.30), t0, span)
    _write(files[2], _jsonl_line, int(total * 0.25), t0, span, gz=True)
    _write_kernel(files[3], t0)
    for f in files:
        end = WEEK_END.timestamp() - 60
        os.utime(f, (end, end))
    marker.write_text(str(size_mb))
    print(f"generated {size_mb} MiB of logs in {time.monotonic() - t:.0f} s", file=sys.stderr)
    return files


def uncompressed_size(f: Path) -> int:
    if f.suffix != ".gz":
        return f.stat().st_size
    n = 0
    with gzip.open(f, "rb") as g:
        while chunk := g.read(1 << 22):
            n += len(chunk)
    return n


# ---------------------------------------------------------------- measurements


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def grep_count(files: list[Path]) -> tuple[float, float, int]:
    """`grep -c -i -E PATTERN` per plain file, `zcat | grep -c ...` per .gz file: wall s, CPU s, matches."""
    t = time.perf_counter()
    c = _children_cpu()
    total = 0
    for f in files:
        if f.suffix == ".gz":
            zcat = subprocess.Popen(["zcat", str(f)], stdout=subprocess.PIPE)
            out = subprocess.run(["grep", "-c", "-i", "-E", GREP_PATTERN], stdin=zcat.stdout, capture_output=True,
                                 text=True, timeout=600)  # fmt: skip
            zcat.stdout.close()
            zcat.wait(timeout=60)
        else:
            out = subprocess.run(["grep", "-c", "-i", "-E", GREP_PATTERN, str(f)], capture_output=True, text=True,
                                 timeout=600)  # fmt: skip
        total += int(out.stdout.strip() or 0)
    return time.perf_counter() - t, _children_cpu() - c, total


def child_scan(d: Path, chunk: int, trace: bool) -> dict:
    """Runs in a fresh process: imports, then one full weekly-review scan of the files."""
    from llm_upkeep.review.config import ReviewConfig
    from llm_upkeep.review.errors import review_scan
    from llm_upkeep.review.logscan import scan_logs
    from llm_upkeep.review.window import review_window

    cfg = ReviewConfig(
        chunk_bytes=chunk,
        sources=[
            {"name": "ollama", "kind": "ollama", "paths": [str(d / "ollama-server.log")]},
            {"name": "vllm", "kind": "vllm", "paths": [str(d / "vllm.log")]},
            {"name": "audit", "kind": "jsonl", "paths": [str(d / "requests.jsonl.gz")]},
            {"name": "kernel", "kind": "kernel", "paths": [str(d / "kern.log")]},
        ],
    )
    window = review_window(WEEK_END, baseline_weeks=cfg.baseline_weeks)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        import tracemalloc

        tracemalloc.start()
    t = time.perf_counter()
    c = time.process_time()
    scan = scan_logs(cfg, window)
    review = review_scan(scan, cfg)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    out = {
        "wall_s": wall, "cpu_s": cpu, "bytes": scan.bytes_read, "lines": scan.lines,
        "incident_lines": scan.incident_lines, "findings": len(review.findings), "totals": review.totals,
        "rss_before_kib": rss_before, "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }  # fmt: skip
    if trace:
        import tracemalloc

        out["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def run_child(d: Path, chunk: int, trace: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--dir", str(d), "--chunk", str(chunk)] + (
        ["--trace"] if trace else []
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="MiB of logs (uncompressed) to generate")
    ap.add_argument("--dir", default="/tmp/llm-upkeep-logbench", help="where the logs are generated / reused")
    ap.add_argument("--chunk", type=int, default=1 << 20, help="scanner chunk size, bytes")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run (saves one scan)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    d = Path(args.dir)
    if args.child:
        print(json.dumps(child_scan(d, args.chunk, args.trace)))
        return 0
    if not shutil.which("grep") or not shutil.which("zcat"):
        print("grep and zcat are needed for the comparison", file=sys.stderr)
        return 2
    files = generate(d, args.size_mb)
    size = sum(uncompressed_size(f) for f in files)
    on_disk = sum(f.stat().st_size for f in files)
    grep_count(files)  # warms the page cache for both
    grep_s, grep_cpu, grep_n = grep_count(files)
    scan = run_child(d, args.chunk, trace=False)
    traced = None if args.no_trace else run_child(d, args.chunk, trace=True)["traced_peak_bytes"]
    mb = size / 1e6
    res = {
        "uncompressed_mb": round(mb, 1), "on_disk_mb": round(on_disk / 1e6, 1), "files": len(files),
        "lines": scan["lines"], "scan_s": round(scan["wall_s"], 2), "scan_cpu_s": round(scan["cpu_s"], 2),
        "scan_mb_per_s": round(mb / scan["wall_s"], 1), "grep_s": round(grep_s, 2),
        "grep_mb_per_s": round(mb / grep_s, 1), "grep_cpu_s": round(grep_cpu, 2),
        "slowdown_vs_grep": round(scan["wall_s"] / grep_s, 2),
        "scan_cpu_mb_per_s": round(mb / scan["cpu_s"], 1),
        "slowdown_vs_grep_cpu": round(scan["cpu_s"] / grep_cpu, 2) if grep_cpu else None,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "grep_matches": grep_n, "incident_lines": scan["incident_lines"], "findings": scan["findings"],
        "totals": scan["totals"], "chunk_bytes": args.chunk,
        "peak_rss_mb": round(scan["rss_peak_kib"] / 1024, 1),
        "rss_growth_during_scan_mb": round((scan["rss_peak_kib"] - scan["rss_before_kib"]) / 1024, 1),
        "tracemalloc_peak_mb": None if traced is None else round(traced / 1e6, 2),
    }  # fmt: skip
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['uncompressed_mb']:,.0f} MB ({res['on_disk_mb']:,.0f} MB on disk, {res['lines']:,} lines, "
              f"{res['files']} files incl. one .gz)")  # fmt: skip
        print(f"weekly-review scan: {res['scan_s']:.1f} s = {res['scan_mb_per_s']:.0f} MB/s "
              f"({res['incident_lines']:,} incident lines, {res['findings']} findings)")  # fmt: skip
        print(f"grep -c -i -E (zcat for .gz): {res['grep_s']:.1f} s = {res['grep_mb_per_s']:.0f} MB/s "
              f"({res['grep_matches']:,} matching lines)")  # fmt: skip
        print(f"ratio: the scan takes {res['slowdown_vs_grep']:.1f}x the wall time of grep -c, "
              f"{res['slowdown_vs_grep_cpu']}x its CPU time (scan CPU {res['scan_cpu_s']:.1f} s = "
              f"{res['scan_cpu_mb_per_s']:.0f} MB/s; grep+zcat CPU {res['grep_cpu_s']:.1f} s; "
              f"load average {res['load_average_1m']} on {res['cpus']} CPUs)")  # fmt: skip
        print(f"peak RSS {res['peak_rss_mb']:.0f} MB (grew {res['rss_growth_during_scan_mb']:.1f} MB during the "
              f"scan); tracemalloc peak {res['tracemalloc_peak_mb']} MB; chunk {args.chunk} bytes")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
