"""The daily health flow over many simulated endpoints: how long past the slowest probe?

Usage: .venv/bin/python benchmarks/health_fleet.py [--endpoints 50] [--ttft 0.5] [--runs 3]

The simulators run in a separate process (so the flow's process measures only itself).
Each run reports the flow's wall time, the slowest probe's end-to-end latency, and the
difference; the same probes without Prefect (plain asyncio.gather) give Prefect's overhead
per task. Uses PREFECT_API_URL when set, else a temporary local server (SQLite).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIMS = """
import sys, time
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
n, ttft = int(sys.argv[1]), float(sys.argv[2])
servers = [SimServer(SimBehavior(ttft_s=ttft, itl_s=0.01, tokens=16)).start() for _ in range(n)]
print(" ".join(s.url for s in servers), flush=True)
sys.stdin.read()
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--ttft", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    sims = subprocess.Popen(
        [sys.executable, "-c", SIMS, str(args.endpoints), str(args.ttft)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        urls = sims.stdout.readline().split()
        import tomli_w

        from flows.daily_health import daily_health
        from llm_upkeep.clients import make_http_client
        from llm_upkeep.config import load_config
        from llm_upkeep.probe import probe_endpoint

        tmp = tempfile.mkdtemp()
        cfg_path = os.path.join(tmp, "fleet.toml")
        data = {
            "state_dir": os.path.join(tmp, "state"),
            "endpoints": [
                {"name": f"sim-{i:03d}", "api": "ollama" if i % 2 else "openai", "url": u, "model": "llama3:8b"}
                for i, u in enumerate(urls)
            ],
            "health": {"probe_max_tokens": 16, "disk_paths": [tmp]},
            "gpu": {"enabled": False},
        }
        with open(cfg_path, "wb") as f:
            tomli_w.dump(data, f)
        cfg = load_config(cfg_path)

        async def bare():
            async with make_http_client() as http:
                t0 = time.perf_counter()
                res = await asyncio.gather(*[probe_endpoint(e, http, prompt="test", max_tokens=16) for e in cfg.endpoints])
                return time.perf_counter() - t0, max(r.e2e_s for r in res)

        bare_runs = [asyncio.run(bare()) for _ in range(args.runs)]
        flow_runs = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = asyncio.run(daily_health(config_path=cfg_path))
            wall = time.perf_counter() - t0
            slowest = max(c.value for c in result.checks if c.check == "e2e_latency" and c.value is not None)
            flow_runs.append({"flow_duration_s": result.duration_s, "call_wall_s": round(wall, 3),
                              "slowest_probe_s": round(slowest, 3),
                              "past_slowest_s": round(result.duration_s - slowest, 3),
                              "status": result.status})  # fmt: skip
        n_tasks = args.endpoints + 4  # probes + gpu/disk, history, report
        bare_wall = statistics.median(b[0] for b in bare_runs)
        flow_dur = statistics.median(r["flow_duration_s"] for r in flow_runs)
        out = {
            "endpoints": args.endpoints,
            "true_ttft_s": args.ttft,
            "runs": flow_runs,
            "bare_gather_wall_s": round(bare_wall, 3),
            "bare_slowest_probe_s": round(statistics.median(b[1] for b in bare_runs), 3),
            "median_flow_duration_s": flow_dur,
            "median_past_slowest_probe_s": statistics.median(r["past_slowest_s"] for r in flow_runs),
            "prefect_overhead_per_task_ms": round(1000 * (flow_dur - bare_wall) / n_tasks, 1),
            "note": "call_wall_s includes starting the flow run (and a temporary server on the first run)",
        }
        print(json.dumps(out, indent=2))
    finally:
        sims.stdin.close()
        sims.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
