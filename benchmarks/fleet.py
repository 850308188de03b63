"""The fleet daily health at scale, on the real fleet path: M simulated endpoints on N hosts,
PostgreSQL, one process worker per host plus the central one.

Usage: .venv/bin/python benchmarks/fleet.py [--endpoints 500] [--hosts 20] [--db postgres]
                                             [--rounds 1] [--ttft 0.5]

What it does: starts PostgreSQL (Debian's package; initdb + pg_ctl into a temp dir on a loopback
port, as the `postgres` user when run as root; installed with apt-get if missing), or SQLite with
--db sqlite; starts `prefect server start` on it with its scheduler off (this script creates the
runs, as the scheduler would); starts the simulators in their own process; writes one config per
machine (central + every host: the same endpoints and [fleet] hosts, each its own state dir);
registers daily-health with `llm-upkeep deploy --config central.toml --name daily-health` (the
central copy plus one host copy per host, as fleet_deployment_specs generates them); starts
`llm-upkeep worker --central` and `llm-upkeep worker --host host-<i>` for every host; then creates
a run of the central daily-health deployment through the API, `--rounds` times. The central run
probes every endpoint and dispatches each host's part to that host's queue (run_deployment).

Figures per round: the fleet run's end minus the slowest probe's end (server timestamps of the
probe-<host> task runs, one per host, each ending with its host's slowest probe; the issue's
target is within 10 s; the probes' own outcomes and TTFTs come from the central run's history), the run's duration, the host parts'
states, the Prefect server's CPU seconds (user+system of the server's process tree over the
round) and the peak RSS of that tree, the worker count, the database, the load average. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_fixtures import Postgres as TestPostgres  # noqa: E402
from tests.pg_fixtures import free_port  # noqa: E402
from tests.pg_fixtures import pg_bin as tests_pg_bin  # noqa: E402

SIMS = """
import json, sys
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
n, ttft = int(sys.argv[1]), float(sys.argv[2])
servers = [SimServer(SimBehavior(ttft_s=ttft, itl_s=0.01, tokens=16)).start() for _ in range(n)]
print(" ".join(s.url for s in servers), flush=True)
sys.stdin.read()
if sys.argv[3:] == ["timings"]:  # each generation's receipt and first token, wall clock
    print(json.dumps({s.url: [[r["time"], r["first_token_time"]] for r in list(s.requests)
                              if "first_token_time" in r] for s in servers}), flush=True)
"""


def stop_sims(procs: list[subprocess.Popen]) -> dict[str, list[list[float]]]:
    """Stop simulator processes started with ``SIMS ... timings``; returns each server's
    generations as [received, first token sent] (wall clock), in the order they came."""
    for p in procs:
        p.stdin.close()
    served: dict[str, list[list[float]]] = {}
    for p in procs:
        with contextlib.suppress(ValueError):  # one that died answers nothing: its servers are missing
            served.update(json.loads(p.stdout.read() or "{}"))
        p.wait(timeout=30)
    return served


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


# ---------------------------------------------------------------- the Prefect server


def start_server(server_env: dict[str, str], port: int, log: Path, timeout_s: float = 300) -> subprocess.Popen:
    """`prefect server start` on loopback; returns once its API answers /health."""
    import httpx

    server = popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                    str(port)], server_env, log)  # fmt: skip
    t0 = time.perf_counter()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        if server.poll() is not None or time.perf_counter() - t0 > timeout_s:
            stop(server)
            raise SystemExit(f"the Prefect server did not start; see {log}")
        time.sleep(0.5)


# ---------------------------------------------------------------- the server's process tree


class TreeMeter:
    """CPU seconds and peak RSS of a process and its children, sampled every 0.5 s.

    CPU is counted per live process (a child that exited between samples keeps its last reading),
    so it is a lower bound; the server's children (uvicorn workers, services) live as long as it."""

    def __init__(self, *pids: int):
        import psutil

        self.roots = [psutil.Process(pid) for pid in pids]
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        import psutil

        procs = list(self.roots)
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                procs += root.children(recursive=True)
        rss = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                self.cpu[p.pid] = t.user + t.system
                rss += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)

    def total_cpu(self) -> float:
        return sum(self.cpu.values())

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self):
        self.sample()
        self.cpu0 = self.total_cpu()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.sample()


# ---------------------------------------------------------------- one round


async def probe_runs(c, flow_run_id) -> list:
    """The finished probe task runs (one per host) of one flow run (the server pages them, 200 a call)."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    out, offset = [], 0
    while True:
        page = await c.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])),
            limit=200, offset=offset,
        )  # fmt: skip
        out += [t for t in page if t.name.startswith("probe-") and t.end_time]
        if len(page) < 200:
            return out
        offset += 200


async def fleet_round(api: str, timeout_s: float, expected: int) -> dict:
    """One central daily-health run, created as the scheduler would; timings from the server."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    async with PrefectClient(api) as c:
        d = await c.read_deployment_by_name("daily-health/daily-health")
        t0 = time.perf_counter()
        run = await c.create_flow_run_from_deployment(d.id, parameters={"chain_runbook": False})
        while True:
            cur = await c.read_flow_run(run.id)
            if cur.state and cur.state.is_final():
                break
            if time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"fleet run not finished in {timeout_s} s: {cur.state_name}")
            await asyncio.sleep(0.5)
        wall = time.perf_counter() - t0
        # The server records task-run states from its event stream, behind the client: wait (up to
        # 60 s) until every endpoint's probe has its end time.
        t1 = time.perf_counter()
        while True:
            probes = await probe_runs(c, run.id)
            if len(probes) >= expected or time.perf_counter() - t1 > 60:
                break
            await asyncio.sleep(1)
        kids = await c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id]))
        )
        timeline = await run_timeline(c, cur, kids)
    slowest = max((t.end_time for t in probes), default=None)
    parts_end = max((k.end_time for k in kids if k.end_time), default=None)
    return {
        "flow_run_id": str(run.id),
        "state": cur.state_name,
        "wall_s": round(wall, 2),
        "start_delay_s": round((cur.start_time - cur.created).total_seconds(), 2) if cur.start_time else None,
        "duration_s": round((cur.end_time - cur.start_time).total_seconds(), 2) if cur.end_time else None,
        "probes_recorded": len(probes),
        "slowest_probe_end_to_run_end_s": (
            round((cur.end_time - slowest).total_seconds(), 2) if slowest and cur.end_time else None
        ),
        "last_host_part_end_to_run_end_s": (
            round((cur.end_time - parts_end).total_seconds(), 2) if parts_end and cur.end_time else None
        ),
        # Where the time goes: a host part waits for its worker to start a process, then runs.
        "host_part_start_delay_s_max": max(
            (round((k.start_time - k.created).total_seconds(), 2) for k in kids if k.start_time), default=None
        ),
        "host_part_duration_s_max": max(
            (
                round((k.end_time - k.start_time).total_seconds(), 2)
                for k in kids
                if k.end_time and k.start_time
            ),
            default=None,
        ),
        "slowest_probe_end_s_after_run_start": (
            round((slowest - cur.start_time).total_seconds(), 2) if slowest and cur.start_time else None
        ),
        "host_parts": {k.state_name: sum(1 for x in kids if x.state_name == k.state_name) for k in kids},
        "timeline": timeline,
        "not_completed": {r.name: f"{r.state_name}: {(r.state.message or '')[:300]}"
                          for r in (cur, *kids) if r.state and not r.state.is_completed()},  # fmt: skip
    }


def probe_outcomes(db: Path, run_id: str, true_ttft: float) -> dict:
    """What the central run's probes read, from its history: a figure over failed probes would
    time a broken benchmark, not the fleet (every endpoint here is healthy, TTFT true_ttft)."""
    import sqlite3
    import statistics

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT check_name, status, value, detail FROM checks WHERE run_id = ? AND "
                           "check_name IN ('endpoint_up', 'ttft')", (run_id,)).fetchall()  # fmt: skip
    finally:
        con.close()
    up = [r for r in rows if r[0] == "endpoint_up"]
    ttft = sorted(r[2] for r in rows if r[0] == "ttft" and r[2] is not None)
    down: dict[str, int] = {}
    for r in up:
        if r[1] != "ok":
            kind = (r[3] or "?").split(":")[0]
            down[kind] = down.get(kind, 0) + 1
    return {
        "probed": len(up), "up": sum(1 for r in up if r[1] == "ok"), "down_by_kind": down,
        "ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
        "ttft_max_s": round(ttft[-1], 3) if ttft else None, "true_ttft_s": true_ttft,
    }  # fmt: skip


def add_server_ttft(results: list[dict], served: dict[str, list[list[float]]]) -> None:
    """Beside what the fleet run read, what the servers did: each simulator records every
    generation's receipt and first token (wall clock), so a TTFT read late on a saturated machine is
    told apart from a simulator that answered late. Round k of the whole benchmark is generation k
    of every server (each endpoint is probed once a round, never retried here); where a server
    served more (a failed probe re-checked on its host), the rounds are not told apart."""
    import statistics

    rounds = [rd for res in results for rd in res.get("rounds", [])]
    if not served or not rounds:
        return
    if any(len(g) != len(rounds) for g in served.values()):
        for rd in rounds:
            rd.setdefault("probe_outcomes", {})["server_ttft"] = "not comparable: some server answered a re-probe"
        return
    for k, rd in enumerate(rounds):
        own = sorted(g[k][1] - g[k][0] for g in served.values())
        rd.setdefault("probe_outcomes", {}).update(
            server_ttft_p50_s=round(statistics.median(own), 3), server_ttft_max_s=round(own[-1], 3)
        )


async def pending_at(c, flow_run_id, off):
    states = await c.read_flow_run_states(flow_run_id)
    return min((off(st.timestamp) for st in states if st.type.value == "PENDING"), default=None)


async def run_timeline(c, run, kids) -> dict:
    """Where the time went, on the server's clock, in seconds from the central run's start: each
    host part's created/started/ended, and the non-probe task runs of the central run and of the
    longest host part (start, duration)."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    if not run.start_time:
        return {}
    t0 = run.start_time

    def off(t):
        return None if t is None else round((t - t0).total_seconds(), 2)

    async def tasks(fr):
        page = await c.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[fr.id])),
                                      limit=200)  # fmt: skip
        rows = [(t.name, off(t.start_time), round((t.end_time - t.start_time).total_seconds(), 2))
                for t in page if t.start_time and t.end_time and not t.name.startswith("probe-")]  # fmt: skip
        return sorted(rows, key=lambda r: r[1])

    done = [k for k in kids if k.start_time and k.end_time]
    longest = max(done, key=lambda k: (k.end_time - k.start_time), default=None)
    return {
        "run_end": off(run.end_time),
        # per part: created (by the central run), Pending (its worker picked it up), Running (its
        # process started the flow), final
        "parts": sorted([[k.name, off(k.created), await pending_at(c, k.id, off), off(k.start_time), off(k.end_time)]
                         for k in kids], key=lambda r: r[4] or 0),  # fmt: skip
        "central_tasks": await tasks(run),
        "longest_part_tasks": await tasks(longest) if longest else [],
    }


# ---------------------------------------------------------------- one database


def log_size(work: Path, name: str) -> int:
    p = work / f"worker-{name}.log"
    return p.stat().st_size if p.exists() else 0


def run_process_cpu(work: Path, since: dict[str, int]) -> dict:
    """CPU seconds of each flow-run process of the round, as the warm starter reports them at exit
    (exact, from wait4): the central run's and the host parts' (sum, max). Empty for cold workers."""
    import re

    per = {}
    for name, offset in since.items():
        with open(work / f"worker-{name}.log", "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        per[name] = [float(m) for m in re.findall(r"exited -?\d+ after [\d.?]+ s?,? ?CPU ([\d.]+) s", text)]
    parts = [c for n, cs in per.items() if n != "central" for c in cs]
    return {"central": sum(per.get("central", [])), "parts_sum": round(sum(parts), 2),
            "parts_max": max(parts, default=None), "processes": sum(len(v) for v in per.values())}  # fmt: skip


def wait_workers_ready(work: Path, names, warm: bool, timeout: float = 600) -> float:
    """Seconds until every worker polls (and, warm, its zygote has imported the flows): a fleet's
    workers are long-running, so the scheduled run meets them ready; their start is reported apart."""
    from llm_upkeep.warm_start.zygote import READY_LINE

    t0 = time.perf_counter()
    want = [READY_LINE, "started!"] if warm else ["started!"]
    while time.perf_counter() - t0 < timeout:
        logs = [(work / f"worker-{n}.log").read_text(errors="replace") if (work / f"worker-{n}.log").exists()
                else "" for n in names]  # fmt: skip
        if all(all(w in log for w in want) for log in logs):
            return round(time.perf_counter() - t0, 1)
        time.sleep(0.5)
    raise SystemExit(f"workers not ready after {timeout:g} s; see {work}/worker-*.log")


def bench_db(kind: str, args, urls: list[str], base: Path) -> dict:
    import tomli_w

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LLM_UPKEEP_"))}
    env.update({
        "PREFECT_HOME": str(work / "home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": args.log_level,
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "LLM_UPKEEP_PROJECT_DIR": str(ROOT), "PYTHONPATH": str(ROOT),
    })  # fmt: skip
    # The script creates the runs; a running scheduler would add the deployments' own schedules.
    server_env = dict(env, PREFECT_API_DATABASE_CONNECTION_URL=db_url,
                      PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")  # fmt: skip
    server = None
    workers: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        server = start_server(server_env, port, work / "server.log")
        server_start = time.perf_counter() - t0

        # Endpoint i lives on host i % hosts; every machine's config lists the whole fleet.
        hosts = [f"host-{i}" for i in range(args.hosts)]
        endpoints = [
            {"name": f"sim-{i:03d}", "api": "ollama" if i % 2 else "openai", "url": u, "model": "llama3:8b",
             "host": hosts[i % args.hosts]}
            for i, u in enumerate(urls)
        ]  # fmt: skip
        configs = {}
        for name in ("central", *hosts):
            d = work / name
            (d / "logs").mkdir(parents=True)
            cfg = {"state_dir": str(d / "state"), "endpoints": endpoints, "logs": {"dirs": [str(d / "logs")]},
                   "health": {"probe_max_tokens": 16, "probe_retries": 0, "ttft_alert_s": 30,
                              "disk_paths": [str(d)]},
                   "restart": {"dry_run": True},
                   "fleet": {"work_pool": "bench", "part_timeout_s": args.part_timeout, "worker_poll_s": args.poll,
                             "hosts": [{"name": h} for h in hosts]}}  # fmt: skip
            if args.host_steps is not None:
                cfg["fleet"]["host_local_steps"] = [x for x in args.host_steps.split(",") if x]
            configs[name] = d / "llm-upkeep.toml"
            configs[name].write_text(tomli_w.dumps(cfg))

        t1 = time.perf_counter()
        dep = subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "deploy", "--json", "--config",
                              str(configs["central"]), "--name", "daily-health"],
                             env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)  # fmt: skip
        if dep.returncode != 0:
            raise SystemExit(f"{kind}: deploy failed:\n{(dep.stdout + dep.stderr)[-3000:]}")
        deployed = json.loads(dep.stdout.strip().splitlines()[-1])
        deploy_s = time.perf_counter() - t1

        for name in ("central", *hosts):
            wenv = dict(env, PREFECT_HOME=str(work / name / "prefect-home"))
            where = ["--central"] if name == "central" else ["--host", name]
            cold = ["--cold"] if args.cold else []
            workers.append(popen([sys.executable, "-m", "llm_upkeep.cli", "worker", *where, *cold, "--config",
                                  str(configs[name])], wenv, work / f"worker-{name}.log", cwd=ROOT))  # fmt: skip
        workers_ready_s = wait_workers_ready(work, ("central", *hosts), warm=not args.cold)
        with TreeMeter(server.pid) as idle:  # what the polling workers alone cost the server
            time.sleep(10)
        server_idle_cpu = round((idle.total_cpu() - idle.cpu0) / 10, 3)

        rounds = []
        for _ in range(args.rounds):
            logs0 = {n: log_size(work, n) for n in ("central", *hosts)}
            with TreeMeter(server.pid) as meter, TreeMeter(*[w.pid for w in workers]) as wmeter:
                groups = len({e["host"] for e in endpoints})  # one probe task run per host
                rd = asyncio.run(fleet_round(api, args.part_timeout + 900, groups))
            rd["probe_outcomes"] = probe_outcomes(work / "central" / "state" / "history.sqlite", rd["flow_run_id"],
                                                  args.ttft)  # fmt: skip
            rd["server_cpu_s"] = round(meter.total_cpu() - meter.cpu0, 1)
            rd["workers_cpu_s_at_least"] = round(wmeter.total_cpu() - wmeter.cpu0, 1)
            rd["run_process_cpu_s"] = run_process_cpu(work, logs0)
            rd["server_peak_rss_mib"] = round(meter.peak_rss / 2**20)
            rd["load_avg"] = [round(x, 1) for x in os.getloadavg()]
            rounds.append(rd)
            print(json.dumps(rd), file=sys.stderr, flush=True)
        target = [r["slowest_probe_end_to_run_end_s"] for r in rounds]
        return {
            "db": kind,
            "deployments": len(deployed["deployments"]),
            "workers": len(workers),
            "server_start_s": round(server_start, 1),
            "deploy_s": round(deploy_s, 1),
            "workers_ready_s": workers_ready_s,
            "server_idle_cpu_s_per_s": server_idle_cpu,
            "rounds": rounds,
            "within_10s_of_slowest_probe": all(t is not None and t <= 10 for t in target),
        }
    finally:
        for w in workers:
            stop(w)
        stop(server)
        if pg is not None:
            pg.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=500)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--db", default="postgres")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ttft", type=float, default=0.5)
    ap.add_argument("--part-timeout", type=float, default=600, help="[fleet] part_timeout_s")
    ap.add_argument("--poll", type=float, default=5.0, help="[fleet] worker_poll_s (how often workers ask for runs)")
    ap.add_argument("--log-level", default="INFO",
                    help="PREFECT_LOGGING_LEVEL of the server, workers and runs: INFO, an install's default, sends "
                         "every run's and task's log lines to the API; WARNING (the earlier figures) sends almost none")  # fmt: skip
    ap.add_argument("--cold", action="store_true", help="workers start each run cold (llm-upkeep worker --cold)")
    ap.add_argument("--sims-per-process", type=int, default=25,
                    help="simulated endpoints per simulator process (one host's worth at 500 / 20)")
    ap.add_argument("--host-steps", default=None,
                    help="[fleet] host_local_steps, comma-separated (default: the config's default, all)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs) and print its path")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="llm-upkeep-fleet-"))
    if os.geteuid() == 0:
        os.chmod(base, 0o755)
    # A fleet's endpoints are separate servers: spread the simulators over processes (one process
    # of 500 threaded servers could not accept 500 connections at once within the 5 s connect timeout
    # on 2 busy cores: a quarter of the probes failed, timing a broken benchmark).
    per = max(1, args.sims_per_process)
    counts = [min(per, args.endpoints - i) for i in range(0, args.endpoints, per)]
    simprocs = [subprocess.Popen([sys.executable, "-c", SIMS, str(n), str(args.ttft), "timings"], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in counts]  # fmt: skip
    results = []
    try:
        urls = [u for sp in simprocs for u in sp.stdout.readline().split()]
        for kind in args.db.split(","):
            results.append(bench_db(kind.strip(), args, urls, base))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # kept if a later one fails
    finally:
        add_server_ttft(results, stop_sims(simprocs))
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    out = {
        "worker_start": "cold" if args.cold else "warm",
        "log_level": args.log_level,
        "endpoints": args.endpoints,
        "hosts": args.hosts,
        "true_ttft_s": args.ttft,
        "simulator_processes": len(counts),
        "cpus": os.cpu_count(),
        "load_avg_at_end": [round(x, 1) for x in os.getloadavg()],
        "results": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
