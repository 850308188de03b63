"""Many endpoints probed at once through the flows' measurement path: does TTFT stay true?

Usage: .venv/bin/python benchmarks/probe_fanout.py [--endpoints 100,500] [--per-process 25]
                                                   [--ttft 0.5] [--path process]

Simulated servers (TTFT --ttft, 16 tokens 10 ms apart) run in processes of their own, --per-process
each (a fleet's servers are separate machines; one process of 500 threaded servers is its own
bottleneck). For each count, one warm-up probe, then every endpoint at once with
``measure_probes`` (the path daily health, the runbook and `llm-upkeep check` use), then one
probe of one endpoint alone: the bare reference of the same run. Prints one JSON line per count:
TTFT p50 / p90 / max, the share of probes that failed and how, the wall time, and the
p50 / bare ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fleet import SIMS, stop_sims  # noqa: E402
from llm_upkeep import measure  # noqa: E402
from llm_upkeep.config import EndpointConfig  # noqa: E402


def start_sims(n: int, per: int, ttft: float) -> tuple[list[subprocess.Popen], list[str]]:
    procs = [subprocess.Popen([sys.executable, "-c", SIMS, str(min(per, n - i)), str(ttft), "timings"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for i in range(0, n, per)]  # fmt: skip
    return procs, [u for p in procs for u in p.stdout.readline().split()]


async def fan_out(urls: list[str], path: str) -> dict:
    eps = [EndpointConfig(name=f"sim-{i:04d}", api="ollama" if i % 2 else "openai", url=u, model="llama3:8b")
           for i, u in enumerate(urls)]  # fmt: skip
    await measure.measure_probes(eps[:2], max_tokens=4, path=path)  # the probe process is up
    t0 = time.perf_counter()
    res = await measure.measure_probes(eps, max_tokens=16, path=path)
    wall = time.perf_counter() - t0
    (bare,) = await measure.measure_probes(eps[:1], max_tokens=16, path=path)
    ttft = sorted(r.ttft_s for r in res if r.ok and r.ttft_s is not None)
    failed: dict[str, int] = {}
    for r in res:
        if not r.ok:
            failed[r.error_kind or "?"] = failed.get(r.error_kind or "?", 0) + 1
    p50 = statistics.median(ttft) if ttft else None
    return {
        "endpoints": len(eps), "path": path, "ok": len(ttft), "failed": failed, "wall_s": round(wall, 2),
        "ttft_p50_s": round(p50, 3) if p50 else None,
        "ttft_p90_s": round(ttft[int(0.9 * (len(ttft) - 1))], 3) if ttft else None,
        "ttft_max_s": round(ttft[-1], 3) if ttft else None,
        "bare_ttft_s": round(bare.ttft_s, 3) if bare.ttft_s else None,
        "p50_over_bare": round(p50 / bare.ttft_s, 2) if p50 and bare.ttft_s else None,
        "read": [r.ttft_s if r.ok else None for r in res], "bare_read": bare.ttft_s,
    }  # fmt: skip


def split_ttft(out: dict, urls: list[str], served: dict[str, list[list[float]]]) -> dict:
    """Split each TTFT the probes read into the server's own (its receipt of the request to its
    first token handed to the socket, from the simulators' records) and what the rest added:
    the probe process (connection, request, reading the stream, stamping) and the network. On a
    saturated machine the simulators are late too; that is theirs, and the probe path is judged
    by the rest. Order per server: the warm-up (first two), the fan-out, the lone probe (first)."""
    own, added = [], []
    for i, (url, read) in enumerate(zip(urls, out["read"], strict=True)):
        gens = served.get(url, [])
        k = 1 if i < 2 else 0
        if read is None or len(gens) <= k:
            continue
        own.append(gens[k][1] - gens[k][0])
        added.append(read - own[-1])
    bare_gens = served.get(urls[0], [])
    bare_own = bare_gens[2][1] - bare_gens[2][0] if len(bare_gens) > 2 else None
    res = {k: v for k, v in out.items() if k not in ("read", "bare_read")}
    if own:
        res |= {
            "server_ttft_p50_s": round(statistics.median(own), 3),
            "server_ttft_max_s": round(max(own), 3),
            "probe_added_p50_s": round(statistics.median(added), 4),
            "probe_added_p90_s": round(sorted(added)[int(0.9 * (len(added) - 1))], 4),
            "probe_added_max_s": round(max(added), 4),
        }  # fmt: skip
    if bare_own is not None and out["bare_read"] is not None:
        res |= {"bare_server_ttft_s": round(bare_own, 4), "bare_probe_added_s": round(out["bare_read"] - bare_own, 4)}
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", default="100,500")
    ap.add_argument("--per-process", type=int, default=25)
    ap.add_argument("--ttft", type=float, default=0.5)
    ap.add_argument("--path", default="process", choices=measure.ISOLATIONS)
    args = ap.parse_args()
    for n in (int(x) for x in args.endpoints.split(",")):
        procs, urls = start_sims(n, args.per_process, args.ttft)
        try:
            out = asyncio.run(fan_out(urls, args.path))
        finally:
            served = stop_sims(procs)
        print(json.dumps({**split_ttft(out, urls, served), "true_ttft_s": args.ttft}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
