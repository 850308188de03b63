"""How fast is the benchmark runner itself, and how much latency does it add?

Usage: .venv/bin/python benchmarks/bench_client.py [--requests 400] [--guidellm PATH]
       [--levels 1,16,32,64] [--no-throughput] [--one-process]

1. Throughput: the simulator (separate process) answers instantly (TTFT 0, no delay between
   16 tokens); the runner streams N requests at concurrency 1, 4, 16 and 64. Reports streaming
   requests/s, tokens/s and the CPU both processes used (which side is the limit).
2. Added latency: the simulator answers with TTFT 50 ms and 15 ms (then 5 ms) between 16
   tokens (truth counted from when it has read the request: e2e = TTFT + 15 gaps); the
   runner's measured TTFT and e2e minus the truth, p50 and p99, at concurrency 1, 16, 32 and 64,
   with the client's processes, CPU (busiest process), loop lag, run-queue wait (time the client's
   loop waited for a CPU: bench/starvation.py), host idle and client-bound flag. Past 16
   streams the runner spreads them over worker processes (one per core); --one-process keeps
   them in one process, as before, for comparison. Prints the ratio of added TTFT p50 at 32 to
   that at 16 (target <= 2) and the concurrency-16 throughput against GuideLLM's 88 requests/s.
3. With --guidellm (a GuideLLM executable installed in a throwaway venv), the same workloads at
   concurrency 16 through GuideLLM, each sandwiched between two runs of ours (the machine is
   shared: the load average is recorded beside every figure).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from llm_upkeep.bench.runner import RunSettings, run_suite  # noqa: E402
from llm_upkeep.bench.stats import describe  # noqa: E402
from llm_upkeep.bench.suites import parse_suite  # noqa: E402
from llm_upkeep.clients import make_http_client  # noqa: E402
from llm_upkeep.config import EndpointConfig  # noqa: E402

TOKENS = 16
PROMPTS = [f"Say something about item {i}." for i in range(8)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """The simulator in its own process, so the runner's process measures only itself."""

    def __init__(self, ttft: float, itl: float):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_upkeep.sim.llm_server", "--port", str(self.port), "--ttft", str(ttft),
             "--itl", str(itl), "--tokens", str(TOKENS)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/version", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def suite_of(n_requests: int):
    return parse_suite({"name": "bench-client", "max_tokens": TOKENS,
                        "prompts": [{"id": f"p{i}", "prompt": p} for i, p in enumerate(PROMPTS)]})  # fmt: skip


STREAMS_PER_PROCESS = 16  # --one-process sets it past any concurrency (the runner before issue 15)


async def run_ours(url: str, concurrency: int, n: int, ramp_up_s: float = 0.0) -> dict:
    suite = suite_of(n)
    ep = EndpointConfig(name="sim", api="openai", url=url, model="llama3:8b", timeout_s=120)
    st = RunSettings(profile="concurrent", concurrency=concurrency, repeats=max(1, n // len(PROMPTS)),
                     warmup=min(16, concurrency), max_tokens=TOKENS, ramp_up_s=ramp_up_s,
                     streams_per_process=STREAMS_PER_PROCESS)  # fmt: skip
    async with make_http_client() as http:
        c0 = time.process_time()
        run = await run_suite(ep, suite, st, http)
        cpu = time.process_time() - c0
    m = run.metrics()
    return {"run": run, "metrics": m, "client_cpu_s": cpu}


def latency_excess(run, ttft: float, itl: float) -> dict:
    ok = [r for r in run.measured() if r.ok]
    d_ttft = describe([r.ttft_s - ttft for r in ok])
    d_e2e = describe([r.e2e_s - (ttft + (TOKENS - 1) * itl) for r in ok])
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    return {"ttft_excess_ms": {k: ms(d_ttft[k]) for k in ("p50", "p99")},
            "e2e_excess_ms": {k: ms(d_e2e[k]) for k in ("p50", "p99")}, "n": d_ttft["n"]}  # fmt: skip


def run_guidellm(exe: str, url: str, concurrency: int, n: int, workdir: str) -> dict:
    data = os.path.join(workdir, "data.json")
    with open(data, "w") as f:
        json.dump([{"prompt": PROMPTS[i % len(PROMPTS)]} for i in range(n)], f)
    out = os.path.join(workdir, f"gl-{concurrency}-{n}.json")
    cmd = [exe, "run", "--backend", f"kind=openai_http,target={url},request_format=/v1/chat/completions",
           "--profile", f"kind=concurrent,streams={concurrency}", "--constraint", f"kind=max_requests,count={n}",
           "--data", f"kind=json_file,path={data}", "--output", f"kind=json,path={out}", "--disable-console"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL": "ERROR"}
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if proc.returncode != 0 or not os.path.exists(out):
        return {"error": (proc.stderr or proc.stdout)[-500:]}
    b = json.load(open(out))["benchmarks"][0]
    m = b["metrics"]

    def pct(name: str, p: str) -> float:
        return m[name]["successful"]["percentiles"][p]

    return {"requests_per_s": round(m["requests_per_second"]["successful"]["mean"], 1),
            "completed": m["request_totals"]["successful"], "ttft_ms": {"p50": pct("time_to_first_token_ms", "p50"),
            "p99": pct("time_to_first_token_ms", "p99")}, "request_latency_s": {
            "p50": pct("request_latency", "p50"), "p99": pct("request_latency", "p99")},
            "benchmark_duration_s": round(b["duration"], 2), "process_wall_s": round(wall, 1)}  # fmt: skip


def load() -> float:
    return round(os.getloadavg()[0], 2)


def throughput_row(sim: Sim, c: int, n: int) -> dict:
    s0, l0 = sim.cpu_s(), load()
    r = asyncio.run(run_ours(sim.url, c, n))
    m = r["metrics"]
    return {
        "concurrency": c, "requests_per_s": round(m["requests_per_s"], 1),
        "output_tokens_per_s": round(m["output_tokens_per_s"]), "errors": m["errors"],
        "client_processes": r["run"].client_processes, "client_cpu_pct": r["run"].client_cpu_percent,
        "client_wait_pct": r["run"].client_wait_percent, "host_idle_pct": r["run"].host_idle_percent,
        "client_bound": r["run"].client_bound,
        "sim_cpu_pct": round(100 * (sim.cpu_s() - s0) / max(m["duration_s"], 1e-9)),
        "load_avg_before_after": [l0, load()],
    }  # fmt: skip


def latency_row(sim: Sim, ttft: float, itl: float, c: int, n: int, ramp_up_s: float) -> dict:
    """ramp_up_s (--ramp-up): 0 sends every stream at once, and against this simulator (every
    answer exactly as long) they stay in step, so each wave is a burst of sends."""
    l0 = load()
    r = asyncio.run(run_ours(sim.url, c, n, ramp_up_s))
    run = r["run"]
    return {"concurrency": c, "ramp_up_s": ramp_up_s, "true_ttft_ms": ttft * 1000, "true_itl_ms": itl * 1000,
            **latency_excess(run, ttft, itl), "requests_per_s": round(r["metrics"]["requests_per_s"], 1),
            "client_processes": run.client_processes,
            "client_cpu_pct": run.client_cpu_percent, "client_lag_p50_ms": _ms(run.client_lag_s.get("p50")),
            "client_lag_p99_ms": _ms(run.client_lag_s.get("p99")), "client_wait_pct": run.client_wait_percent,
            "client_wait_per_wakeup_ms": run.client_wait_per_wakeup_ms, "host_idle_pct": run.host_idle_percent,
            "client_send_delay_p50_ms": _ms(run.client_send_delay_s.get("p50")),
            "client_send_delay_p90_ms": _ms(run.client_send_delay_s.get("p90")),
            "client_bound": run.client_bound, "load_avg_before_after": [l0, load()]}  # fmt: skip


def _ms(v):
    return None if v is None else round(v * 1000, 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--guidellm", default=shutil.which("guidellm"), help="path of a GuideLLM executable")
    ap.add_argument("--levels", default="1,16,32,64", help="concurrency levels of the added-latency part")
    ap.add_argument("--no-throughput", action="store_true", help="skip part 1")
    ap.add_argument("--one-process", action="store_true", help="every stream in this process (as before)")
    ap.add_argument("--ramp-up", type=float, default=0.0,
                    help="added-latency part: start the streams over this many seconds (the weekly benchmark's "
                    "default is 0.5; 0, the default here, sends them all at once)")  # fmt: skip
    args = ap.parse_args()
    n = args.requests
    global STREAMS_PER_PROCESS
    if args.one_process:
        STREAMS_PER_PROCESS = 1 << 20
    chosen = tuple(int(x) for x in args.levels.split(","))
    out: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": load()},
                 "tokens_per_request": TOKENS, "requests": n, "throughput": [], "added_latency": []}  # fmt: skip

    # 1. Throughput against an instant server; GuideLLM sandwiched between two runs of ours at c=16.
    sim = Sim(0.0, 0.0)
    try:
        for c in () if args.no_throughput else (1, 4, 16, 64):
            out["throughput"].append(throughput_row(sim, c, n))
        if args.guidellm:
            with tempfile.TemporaryDirectory() as d:
                out["guidellm_throughput_c16"] = {**run_guidellm(args.guidellm, sim.url, 16, n, d),
                                                  "load_avg_after": load()}  # fmt: skip
            out["throughput_c16_again"] = throughput_row(sim, 16, n)
    finally:
        sim.stop()

    # 2. Added latency: TTFT 50 ms, then 15 ms (light: 66 tokens/s per stream) or 5 ms between tokens.
    for ttft, itl, levels in ((0.050, 0.015, chosen), (0.050, 0.005, (16,))):
        sim = Sim(ttft, itl)
        try:
            for c in levels:
                out["added_latency"].append(
                    latency_row(sim, ttft, itl, c, max(64, n // (4 if c == 1 else 1)), args.ramp_up)
                )
            if args.guidellm and itl == 0.015:
                with tempfile.TemporaryDirectory() as d:
                    g = run_guidellm(args.guidellm, sim.url, 16, n, d)
                if "ttft_ms" in g:
                    truth = ttft + (TOKENS - 1) * itl
                    g["ttft_excess_ms"] = {k: round(v - ttft * 1000, 2) for k, v in g["ttft_ms"].items()}
                    g["e2e_excess_ms"] = {
                        k: round((v - truth) * 1000, 2) for k, v in g["request_latency_s"].items()
                    }
                out["guidellm_added_latency_c16_itl15"] = {**g, "load_avg_after": load()}
                out["added_latency_c16_itl15_again"] = latency_row(sim, ttft, itl, 16, n, args.ramp_up)
        finally:
            sim.stop()
    lat = {row["concurrency"]: row for row in out["added_latency"] if row["true_itl_ms"] == 15}
    if 16 in lat and 32 in lat:
        a16, a32 = lat[16]["ttft_excess_ms"]["p50"], lat[32]["ttft_excess_ms"]["p50"]
        out["added_ttft_p50_ratio_32_vs_16"] = round(a32 / max(a16, 0.1), 2)  # target <= 2
    tp16 = [row for row in out["throughput"] if row["concurrency"] == 16]
    if tp16:
        out["throughput_c16_vs_guidellm_88"] = round(tp16[0]["requests_per_s"] / 88.0, 2)  # target >= 1
    out["client_bound_levels"] = [row["concurrency"] for row in out["added_latency"] if row.get("client_bound")]
    if args.guidellm:
        ver = subprocess.run([args.guidellm, "--version"], capture_output=True, text=True, timeout=60)
        out["guidellm_version"] = ver.stdout.strip()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
