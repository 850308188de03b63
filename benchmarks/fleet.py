"""Daily health across a simulated fleet: 200 endpoints on 4 hosts, 4 process workers (one work
queue each), against a Prefect server on SQLite and on PostgreSQL.

Usage: .venv/bin/python benchmarks/fleet.py [--endpoints 200] [--hosts 4] [--db sqlite,postgres]
                                             [--rounds 2] [--ttft 0.5]

What it does, per database: starts PostgreSQL (Debian's package; initdb + pg_ctl into a temp dir
on a loopback port, as the `postgres` user when run as root; installed with apt-get if missing)
or uses SQLite; starts `prefect server start` on it; starts the simulators in their own process;
registers one daily-health deployment per host with `llm-upkeep deploy`'s machinery (process work
pool, queue host-<i>); starts one `prefect worker` per queue; then triggers all hosts at once,
`--rounds` times.

Figures: total time from triggering the 4 runs to the last one finishing; each run's own
duration (server timestamps) and its start delay (worker pickup + process start); the bare
probes of one host's endpoints without Prefect (asyncio.gather, same client code); Prefect's
overhead per task = (median run duration - bare probe wall) / tasks per run; task runs the server
recorded; "database is locked" lines in the server log. Prints one JSON object.

Routing: when flows/daily_health.py takes scope/host, each host's run gets scope="host" and its
host name; until then each host gets its own config file listing only its endpoints (the same
work per host either way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_fixtures import Postgres as TestPostgres  # noqa: E402
from tests.pg_fixtures import free_port  # noqa: E402
from tests.pg_fixtures import pg_bin as tests_pg_bin  # noqa: E402

SIMS = """
import sys
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
n, ttft = int(sys.argv[1]), float(sys.argv[2])
servers = [SimServer(SimBehavior(ttft_s=ttft, itl_s=0.01, tokens=16)).start() for _ in range(n)]
print(" ".join(s.url for s in servers), flush=True)
sys.stdin.read()
"""


def popen(cmd, env, log: Path, **kw) -> subprocess.Popen:
    f = open(log, "ab")  # noqa: SIM115 - the child owns it until it exits
    return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, **kw)  # fmt: skip


def stop(p: subprocess.Popen | None, timeout: float = 20) -> None:
    if p is None or p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


# ---------------------------------------------------------------- PostgreSQL


def pg_bin() -> Path:
    found = tests_pg_bin()
    if found is None:
        if os.geteuid() != 0:
            raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql (as root)")
        print("installing postgresql with apt-get ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, timeout=900,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))  # fmt: skip
        found = tests_pg_bin()
    return found


class Postgres(TestPostgres):
    def __init__(self, base: Path):
        super().__init__(base, pg_bin())


# ---------------------------------------------------------------- one database


def bare_probe_wall(cfg, endpoints) -> float:
    from llm_upkeep.clients import make_http_client
    from llm_upkeep.probe import probe_endpoint

    async def go():
        async with make_http_client() as http:
            t0 = time.perf_counter()
            await asyncio.gather(*[probe_endpoint(e, http, prompt="test", max_tokens=16) for e in endpoints])
            return time.perf_counter() - t0

    return statistics.median(asyncio.run(go()) for _ in range(3))


async def trigger_round(dep_ids: list, timeout_s: float) -> dict:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        t0 = time.perf_counter()
        runs = [await client.create_flow_run_from_deployment(d) for d in dep_ids]
        ids = [r.id for r in runs]
        while True:
            cur = [await client.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in cur):
                break
            if time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"runs not finished in {timeout_s} s: {[r.state_name for r in cur]}")
            await asyncio.sleep(0.25)
        total = time.perf_counter() - t0
        # Let the server finish storing task runs (it lags behind the client on SQLite).
        t1 = time.perf_counter()
        counts: list[int] = []
        for _ in range(60):
            counts = []
            for i in ids:
                r = await client._client.post(
                    "/task_runs/count", json={"flow_runs": {"id": {"any_": [str(i)]}}}
                )
                counts.append(int(r.json()))
            if counts and len(set(counts)) == 1 and counts[0] > 0:
                break
            await asyncio.sleep(0.5)
        catch_up = time.perf_counter() - t1
        cur = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    per_run = []
    for r in cur:
        per_run.append({
            "state": r.state_name,
            "duration_s": round((r.end_time - r.start_time).total_seconds(), 3),
            "start_delay_s": round((r.start_time - r.created).total_seconds(), 3),
        })  # fmt: skip
    return {"total_s": round(total, 3), "task_runs": counts, "task_run_catch_up_s": round(catch_up, 2),
            "runs": per_run}  # fmt: skip


def bench_db(kind: str, args, urls: list[str], base: Path) -> dict:
    import tomli_w
    from prefect.settings import PREFECT_API_URL, temporary_settings

    work = base / kind
    work.mkdir()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    pg = None
    if kind == "postgres":
        pg = Postgres(work)
        db_url = pg.start()
    else:
        db_url = f"sqlite+aiosqlite:///{work / 'prefect.db'}"
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(work / "home"), "PREFECT_API_URL": api, "PREFECT_API_DATABASE_CONNECTION_URL": db_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "LLM_UPKEEP_PROJECT_DIR": str(ROOT),
    })  # fmt: skip
    os.environ.update({k: v for k, v in env.items() if k.startswith("PREFECT_")})
    # Prefect reads its settings once per process: each database's server is a temporary context.
    stack = contextlib.ExitStack()
    stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api}))
    server = None
    workers = []
    try:
        t0 = time.perf_counter()
        server = popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                        str(port)], env, work / "server.log")  # fmt: skip
        import httpx

        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.perf_counter() - t0 > 300:
                raise SystemExit(f"{kind}: server did not start; see {work / 'server.log'}")
            time.sleep(0.5)
        server_start = time.perf_counter() - t0

        # Config: endpoint i lives on host i % hosts.
        hosts = [f"host-{i}" for i in range(args.hosts)]
        endpoints = [
            {"name": f"sim-{i:03d}", "api": "ollama" if i % 2 else "openai", "url": u, "model": "llama3:8b",
             "host": hosts[i % args.hosts]}
            for i, u in enumerate(urls)
        ]  # fmt: skip
        common = {"health": {"probe_max_tokens": 16, "disk_paths": [str(work)]}, "gpu": {"enabled": True},
                  "restart": {"dry_run": True}}  # fmt: skip
        from flows.daily_health import daily_health
        from llm_upkeep.config import load_config
        from llm_upkeep.deploy import deploy_project, load_deployments

        scoped = {"scope", "host"} <= set(inspect.signature(daily_health.fn).parameters)
        spec = next(s for s in load_deployments(ROOT) if s.name == "daily-health")
        specs = []
        for h in hosts:
            s = spec.model_copy(deep=True)
            s.name = f"daily-health-{h}"
            s.schedules = []
            if scoped:
                path = work / "fleet.toml"
                data = {"state_dir": str(work / "state"), "endpoints": endpoints,
                        "fleet": {"work_pool": "bench", "hosts": [{"name": x} for x in hosts]}, **common}  # fmt: skip
                s.parameters = {"config_path": str(path), "scope": "host", "host": h}
            else:
                path = work / f"{h}.toml"
                data = {"state_dir": str(work / "state" / h), "endpoints": [e for e in endpoints if e["host"] == h],
                        **common}  # fmt: skip
                s.parameters = {"config_path": str(path)}
            path.write_text(tomli_w.dumps(data))
            from llm_upkeep.deploy import WorkPoolRef

            s.work_pool = WorkPoolRef(name="bench", work_queue_name=f"queue-{h}")
            specs.append(s)
        t1 = time.perf_counter()
        report = deploy_project(ROOT, specs, pool="bench", timeout_s=600)
        if not report.ok:
            raise SystemExit(f"{kind}: deploy failed: {report.missing}\n{report.output[-2000:]}")
        deploy_s = time.perf_counter() - t1
        for h in hosts:
            workers.append(popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "bench", "--type",
                                  "process", "--work-queue", f"queue-{h}", "--name", f"w-{h}"], env,
                                 work / f"worker-{h}.log", cwd=ROOT))  # fmt: skip
        time.sleep(5)

        async def dep_ids():
            from prefect import get_client

            async with get_client() as c:
                return [(await c.read_deployment_by_name(f"daily-health/daily-health-{h}")).id for h in hosts]

        ids = asyncio.run(dep_ids())
        cfg_one = load_config(work / (f"{hosts[0]}.toml" if not scoped else "fleet.toml"))
        mine = [e for e in cfg_one.endpoints if e.host == hosts[0]]
        bare = bare_probe_wall(cfg_one, mine)
        rounds = [asyncio.run(trigger_round(ids, 900)) for _ in range(args.rounds)]
        durations = [r["duration_s"] for rd in rounds for r in rd["runs"]]
        tasks = statistics.median(c for rd in rounds for c in rd["task_runs"])
        med = statistics.median(durations)
        log = (work / "server.log").read_text(errors="replace")
        return {
            "db": kind,
            "routing": "scope=host" if scoped else "per-host config",
            "server_start_s": round(server_start, 1),
            "deploy_s": round(deploy_s, 1),
            "rounds": rounds,
            "median_total_s": statistics.median(r["total_s"] for r in rounds),
            "median_run_duration_s": med,
            "median_start_delay_s": statistics.median(
                r["start_delay_s"] for rd in rounds for r in rd["runs"]
            ),
            "bare_probe_wall_one_host_s": round(bare, 3),
            "task_runs_per_run": tasks,
            "prefect_overhead_per_task_ms": round(1000 * (med - bare) / tasks, 1) if tasks else None,
            "database_locked_lines": log.count("database is locked"),
            "all_completed": all(r["state"] == "Completed" for rd in rounds for r in rd["runs"]),
        }
    finally:
        for w in workers:
            stop(w)
        stop(server)
        if pg is not None:
            pg.stop()
        stack.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ttft", type=float, default=0.5)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="llm-upkeep-fleet-"))
    if os.geteuid() == 0:
        os.chmod(base, 0o755)
    sims = subprocess.Popen([sys.executable, "-c", SIMS, str(args.endpoints), str(args.ttft)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    results = []
    try:
        urls = sims.stdout.readline().split()
        for kind in args.db.split(","):
            results.append(bench_db(kind.strip(), args, urls, base))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # kept if a later one fails
    finally:
        sims.stdin.close()
        sims.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
    out = {
        "endpoints": args.endpoints,
        "hosts": args.hosts,
        "true_ttft_s": args.ttft,
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "results": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
