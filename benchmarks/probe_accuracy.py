"""How true are the daily_health flow's TTFT and e2e figures, next to bare probes, at fleet scale?

Usage: python benchmarks/probe_accuracy.py [--endpoints 1,10,50] [--rounds 3]
       [--isolation process] [--json]

Ground truth: simulated servers in processes of their own (25 per process), first token at
--ttft (300 ms), then tokens --itl (20 ms) apart; the probe asks for --max-tokens (16), so the
true e2e is ttft + (max_tokens - 1) * itl. For each fleet size the same endpoints are measured in
alternating rounds by bare ``probe_endpoint`` calls (asyncio.gather in this plain process, no
flow running) and by the ``daily_health`` flow, in the same run. The error of one reading is
measured - truth; the figure per side is the median over every endpoint and round.

Printed: per size, the median TTFT and e2e errors of both sides and the ratio flow/bare of the
TTFT errors (the three ratios). Targets (issue 15): at 1 endpoint the flow's TTFT error <= 10 ms;
at 10 and 50 the flow's median TTFT error <= 1.2 x the bare probes'. --isolation picks the flow's
measurement path (llm_upkeep/measure.py); a comma list compares several in the same run.
Uses PREFECT_API_URL when set, else Prefect's temporary local server.
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

PER_PROCESS = 25
SIMS = """
import sys
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
n, ttft, itl, tokens = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
servers = [SimServer(SimBehavior(ttft_s=ttft, itl_s=itl, tokens=tokens)).start() for _ in range(n)]
print(" ".join(s.url for s in servers), flush=True)
sys.stdin.read()
"""


def start_sims(n: int, ttft: float, itl: float, tokens: int) -> tuple[list[subprocess.Popen], list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    procs, urls = [], []
    for i in range(0, n, PER_PROCESS):
        k = min(PER_PROCESS, n - i)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SIMS, str(k), str(ttft), str(itl), str(tokens)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        ))  # fmt: skip
    for p in procs:
        urls += p.stdout.readline().split()
    return procs, urls


def stop_sims(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.close()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def write_config(tmp: str, urls: list[str], max_tokens: int) -> str:
    import tomli_w

    data = {
        "state_dir": os.path.join(tmp, "state"),
        "endpoints": [
            {"name": f"sim-{i:03d}", "api": "ollama" if i % 2 else "openai", "url": u, "model": "llama3:8b"}
            for i, u in enumerate(urls)
        ],
        "health": {"probe_max_tokens": max_tokens, "probe_retries": 0, "disk_paths": [tmp]},
        "gpu": {"enabled": False},
    }
    path = os.path.join(tmp, f"accuracy-{len(urls)}.toml")
    with open(path, "wb") as f:
        tomli_w.dump(data, f)
    return path


def bare_round(cfg, max_tokens: int) -> list[tuple[float, float]]:
    from llm_upkeep.clients import make_http_client
    from llm_upkeep.probe import probe_endpoint

    async def go():
        async with make_http_client() as http:
            return await asyncio.gather(
                *[probe_endpoint(e, http, prompt="test", max_tokens=max_tokens) for e in cfg.endpoints]
            )

    return [(r.ttft_s, r.e2e_s) for r in asyncio.run(go()) if r.ok]


def flow_round(cfg_path: str) -> list[tuple[float, float]]:
    from flows.daily_health import daily_health

    result = asyncio.run(daily_health(config_path=cfg_path, allow_restart=False, chain_runbook=False))
    by = {(c.check, c.target): c.value for c in result.checks}
    names = sorted({c.target for c in result.checks if c.check == "ttft"})
    return [(by[("ttft", n)], by[("e2e_latency", n)]) for n in names if by.get(("ttft", n)) is not None]


def errors_ms(readings: list[tuple[float, float]], ttft: float, e2e: float) -> tuple[float, float]:
    return (
        round(1000 * statistics.median(abs(t - ttft) for t, _ in readings), 2),
        round(1000 * statistics.median(abs(e - e2e) for _, e in readings), 2),
    )


def measure_size(n: int, args, isolations: list[str], tmp: str) -> dict:
    from llm_upkeep.config import load_config
    from llm_upkeep.measure import ENV_ISOLATION, close_probe_workers

    procs, urls = start_sims(n, args.ttft, args.itl, args.tokens)
    try:
        cfg_path = write_config(tmp, urls, args.max_tokens)
        cfg = load_config(cfg_path)
        true_e2e = args.ttft + (min(args.max_tokens, args.tokens) - 1) * args.itl
        bare_warm = bare_round(cfg, args.max_tokens)  # first connections, imports: not counted
        assert bare_warm, "no simulator answered"
        bare: list = []
        flows: dict[str, list] = {k: [] for k in isolations}
        for _ in range(args.rounds):
            bare += bare_round(cfg, args.max_tokens)
            for k in isolations:
                os.environ[ENV_ISOLATION] = k
                flows[k] += flow_round(cfg_path)
        close_probe_workers()
        b_ttft, b_e2e = errors_ms(bare, args.ttft, true_e2e)
        out = {"endpoints": n, "readings_per_side": len(bare), "true_ttft_s": args.ttft,
               "true_e2e_s": round(true_e2e, 3),
               "bare": {"ttft_error_ms": b_ttft, "e2e_error_ms": b_e2e,
                        "median_ttft_s": round(statistics.median(t for t, _ in bare), 4)},
               "flow": {}}  # fmt: skip
        for k, readings in flows.items():
            f_ttft, f_e2e = errors_ms(readings, args.ttft, true_e2e)
            out["flow"][k] = {
                "ttft_error_ms": f_ttft, "e2e_error_ms": f_e2e,
                "median_ttft_s": round(statistics.median(t for t, _ in readings), 4),
                "max_ttft_s": round(max(t for t, _ in readings), 4), "readings": len(readings),
                "ttft_error_ratio": round(f_ttft / max(b_ttft, 1e-3), 2),
                "e2e_error_ratio": round(f_e2e / max(b_e2e, 1e-3), 2),
            }  # fmt: skip
        return out
    finally:
        stop_sims(procs)


def add_truth_args(ap: argparse.ArgumentParser) -> None:
    """The simulated servers' ground truth and the probe's length (shared with cli_speed.py)."""
    ap.add_argument("--ttft", type=float, default=0.3, help="true time to first token (s)")
    ap.add_argument("--itl", type=float, default=0.02, help="true time between tokens (s)")
    ap.add_argument("--tokens", type=int, default=60, help="tokens the simulators stream at most")
    ap.add_argument("--max-tokens", type=int, default=16, help="tokens the probe asks for")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", default="1,10,50", help="fleet sizes, comma separated")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per side and size")
    ap.add_argument("--isolation", default="process", help="flow measurement path(s): process,thread,inline")
    add_truth_args(ap)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    isolations = [k.strip() for k in args.isolation.split(",") if k.strip()]
    sizes = [int(x) for x in args.endpoints.split(",")]
    t0 = time.monotonic()
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    tmp = tempfile.mkdtemp(prefix="probe-accuracy-")
    results = [measure_size(n, args, isolations, tmp) for n in sizes]
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    out = {"sizes": results, "isolations": isolations, "loadavg_before": load_before,
           "loadavg_after": load_after, "wall_s": round(time.monotonic() - t0, 1)}  # fmt: skip
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print(f"{'endpoints':>9} {'path':<8} {'bare ttft err':>13} {'flow ttft err':>13} {'ratio':>6} "
          f"{'bare e2e err':>12} {'flow e2e err':>12} {'flow median ttft':>16}")  # fmt: skip
    for r in results:
        for k, f in r["flow"].items():
            print(f"{r['endpoints']:>9} {k:<8} {r['bare']['ttft_error_ms']:>10.1f} ms {f['ttft_error_ms']:>10.1f} ms "
                  f"{f['ttft_error_ratio']:>6.2f} {r['bare']['e2e_error_ms']:>9.1f} ms {f['e2e_error_ms']:>9.1f} ms "
                  f"{f['median_ttft_s']:>14.4f} s")  # fmt: skip
    ratios = ", ".join(f"{r['endpoints']}: {f['ttft_error_ratio']:.2f}" for r in results for f in r["flow"].values())
    print(f"TTFT error ratios flow/bare: {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
