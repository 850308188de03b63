"""The floor under the fleet figure: what Prefect alone costs when every host starts one run.

Usage: .venv/bin/python benchmarks/fleet_floor.py [--hosts 20] [--tasks 0,7] [--rounds 2]

Why: `benchmarks/fleet.py` times the fleet daily health at 500 endpoints on 20 hosts; on one
machine its 20 host parts share that machine's cores with the Prefect server, the central run and
the 500 probes. This measures, on the same path (PostgreSQL, `prefect server start`, one
`llm-upkeep worker --host` per host with its warm starter), parts that do nothing of ours
(`benchmarks/fleet_floor_flow.py`: a flow run with 0 or N empty task runs), created all at once
through the API as the central run's run_deployment creates its parts, and one part alone in the
same run for comparison. Whatever a host part of llm-upkeep does comes on top of this floor.

Figures per round and task count: from the first part's creation to the last part's end (server
clock), the same for one part alone, the parts' own process CPU (from the warm starter's exact
per-run line), the server's CPU and the workers' (process trees, sampled). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fleet import (  # noqa: E402
    Postgres,
    TreeMeter,
    free_port,
    log_size,
    popen,
    run_process_cpu,
    start_server,
    stop,
    wait_workers_ready,
)

FLOW = "floor-part"


def deploy(hosts: list[str], pool: str) -> None:
    """One deployment of the empty part per host, on that host's queue (as fleet_deployment_specs
    places a host copy), registered the way `llm-upkeep deploy` registers prefect.yaml's."""
    from llm_upkeep.deploy import DeploymentSpec, WorkPoolRef, deploy_project

    specs = [DeploymentSpec(name=f"floor-{h}", entrypoint="benchmarks/fleet_floor_flow.py:floor_part",
                            work_pool=WorkPoolRef(name=pool, work_queue_name=f"host-{h}")) for h in hosts]  # fmt: skip
    report = deploy_project(ROOT, specs, pool=pool)
    if not report.ok:
        raise SystemExit(f"deploy failed: {report.error_line()}\n{report.output[-3000:]}")


async def create_and_wait(api: str, hosts: list[str], tasks: int, timeout_s: float) -> dict:
    """Create one run per host at once; wait until all are final. Timings from the server."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with PrefectClient(api) as c:
        deps = await asyncio.gather(*[c.read_deployment_by_name(f"{FLOW}/floor-{h}") for h in hosts])
        runs = await asyncio.gather(*[c.create_flow_run_from_deployment(d.id, parameters={"tasks": tasks})
                                      for d in deps])  # fmt: skip
        ids = [r.id for r in runs]
        t0 = time.perf_counter()
        while True:
            cur = await c.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
            if len(cur) == len(ids) and all(r.state and r.state.is_final() for r in cur):
                break
            if time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"parts not final after {timeout_s:g} s: {[r.state_name for r in cur]}")
            await asyncio.sleep(0.25)
    first = min(r.created for r in cur)
    ends = sorted((r.end_time - first).total_seconds() for r in cur if r.end_time)
    return {
        "parts": len(ids),
        "completed": sum(1 for r in cur if r.state.is_completed()),
        "created_to_last_end_s": round(ends[-1], 2) if ends else None,
        "created_to_median_end_s": round(ends[len(ends) // 2], 2) if ends else None,
        "pending_to_running_max_s": max((round((r.start_time - r.created).total_seconds(), 2)
                                         for r in cur if r.start_time), default=None),  # fmt: skip
        "running_max_s": max((round((r.end_time - r.start_time).total_seconds(), 2)
                              for r in cur if r.start_time and r.end_time), default=None),  # fmt: skip
    }


def main() -> int:
    import tomli_w

    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--tasks", default="0,7", help="empty task runs per part, comma-separated (one set each)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--poll", type=float, default=5.0, help="[fleet] worker_poll_s")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="llm-upkeep-floor-"))
    if os.geteuid() == 0:
        os.chmod(base, 0o755)
    hosts = [f"host-{i}" for i in range(args.hosts)]
    pool = "floor"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LLM_UPKEEP_"))}
    env.update({
        "PREFECT_HOME": str(base / "home"), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": args.log_level, "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "LLM_UPKEEP_PROJECT_DIR": str(ROOT), "PYTHONPATH": str(ROOT),
    })  # fmt: skip
    pg = Postgres(base)
    server, workers = None, []
    out: dict = {"hosts": args.hosts, "cpus": os.cpu_count(), "log_level": args.log_level, "rounds": []}
    try:
        server_env = dict(env, PREFECT_API_DATABASE_CONNECTION_URL=pg.start(),
                          PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")  # fmt: skip
        server = start_server(server_env, port, base / "server.log")
        os.environ.update({"PREFECT_API_URL": api, "PREFECT_HOME": str(base / "home")})
        deploy(hosts, pool)
        for h in hosts:
            d = base / h
            (d / "state").mkdir(parents=True)
            cfg = {"state_dir": str(d / "state"), "fleet": {"work_pool": pool, "worker_poll_s": args.poll,
                                                           "hosts": [{"name": x} for x in hosts]}}  # fmt: skip
            (d / "llm-upkeep.toml").write_text(tomli_w.dumps(cfg))
            workers.append(popen([sys.executable, "-m", "llm_upkeep.cli", "worker", "--host", h, "--config",
                                  str(d / "llm-upkeep.toml")], dict(env, PREFECT_HOME=str(d / "prefect-home")),
                                 base / f"worker-{h}.log", cwd=ROOT))  # fmt: skip
        out["workers"] = len(workers)
        out["workers_ready_s"] = wait_workers_ready(base, hosts, warm=True)
        with TreeMeter(server.pid) as idle:
            time.sleep(10)
        out["server_idle_cpu_s_per_s"] = round((idle.total_cpu() - idle.cpu0) / 10, 3)
        for _ in range(args.rounds):
            for n in [int(x) for x in args.tasks.split(",")]:
                row: dict = {"tasks_per_part": n}
                logs0 = {h: log_size(base, h) for h in hosts}
                with TreeMeter(server.pid) as meter, TreeMeter(*[w.pid for w in workers]) as wmeter:
                    row["all"] = asyncio.run(create_and_wait(api, hosts, n, 600))
                row["all"]["server_cpu_s"] = round(meter.total_cpu() - meter.cpu0, 1)
                row["all"]["workers_cpu_s_at_least"] = round(wmeter.total_cpu() - wmeter.cpu0, 1)
                time.sleep(2)  # the warm starter's exit lines
                row["all"]["run_process_cpu_s"] = run_process_cpu(base, logs0)
                time.sleep(3)
                with TreeMeter(server.pid) as meter:
                    row["alone"] = asyncio.run(create_and_wait(api, hosts[:1], n, 600))
                row["alone"]["server_cpu_s"] = round(meter.total_cpu() - meter.cpu0, 1)
                row["load_avg"] = [round(x, 1) for x in os.getloadavg()]
                out["rounds"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                time.sleep(5)
    finally:
        for w in workers:
            stop(w)
        stop(server)
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
