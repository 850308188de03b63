"""What the 5-minute liveness flow costs: client CPU seconds per run and the Prefect database rows
one run adds (flow run, states, logs, events...), times 288 runs a day.

    python benchmarks/liveness_cost.py --runs 20 [--endpoints 1]

Runs against a temporary Prefect server on SQLite (prefect_test_harness) and simulated endpoints
that answer; these are quiet runs, the steady state. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def table_counts(db: str) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--endpoints", type=int, default=1)
    args = ap.parse_args()

    import tomli_w
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL
    from prefect.testing.utilities import prefect_test_harness

    from flows.liveness import liveness
    from llm_upkeep.sim.llm_server import SimBehavior, SimServer

    sims = [SimServer(SimBehavior(ttft_s=0.02, itl_s=0.002, tokens=1)).start() for _ in range(args.endpoints)]
    tmp = Path(tempfile.mkdtemp(prefix="liveness-cost-"))
    cfg = tmp / "llm-upkeep.toml"
    cfg.write_text(tomli_w.dumps({
        "state_dir": str(tmp / "state"),
        "endpoints": [{"name": f"ep{i}", "api": "openai", "url": s.url, "model": s.behavior.model}
                      for i, s in enumerate(sims)],
    }))  # fmt: skip
    try:
        with prefect_test_harness(server_startup_timeout=120):
            db = PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1]
            asyncio.run(liveness(config_path=str(cfg)))  # warm-up: imports, first connection
            time.sleep(3)
            before = table_counts(db)
            cpu, wall = [], []
            for _ in range(args.runs):
                r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                res = asyncio.run(liveness(config_path=str(cfg)))
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                wall.append(time.perf_counter() - t0)
                cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
                assert res.status == "ok", res
            time.sleep(5)  # let the server store the events the runs emitted
            after = table_counts(db)
    finally:
        for s in sims:
            s.stop()
    # A worker or `llm-upkeep serve` starts each run in a fresh process: its imports cost too.
    import subprocess

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(3):
        subprocess.run([sys.executable, "-c", "import flows.liveness"], check=True, cwd=Path(__file__).parent.parent)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    import_cpu = ((c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)) / 3
    added = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    per_run = {k: round(v / args.runs, 2) for k, v in sorted(added.items())}
    cpu.sort()
    wall.sort()
    print(json.dumps({
        "runs": args.runs, "endpoints": args.endpoints,
        "client_cpu_s_per_run": {"median": round(cpu[len(cpu) // 2], 3), "max": round(cpu[-1], 3)},
        "process_import_cpu_s": round(import_cpu, 3),
        "wall_s_per_run": {"median": round(wall[len(wall) // 2], 3), "max": round(wall[-1], 3)},
        "rows_per_run": per_run, "rows_per_run_total": round(sum(added.values()) / args.runs, 1),
        "rows_per_day_at_5_min": round(sum(added.values()) / args.runs * 288),
        "artifacts_added": added.get("artifact", 0),
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
