"""How long the command line takes, as whole processes, against issue 15's targets.

Usage: python benchmarks/cli_speed.py [--runs 5] [--cases check,config,run-server,run-noserver]
       [--apis ollama,openai] [--json]

Ground truth: two simulated servers (one Ollama API, one OpenAI API; first token at --ttft,
300 ms, then tokens --itl, 20 ms, apart) in a process of their own. Each case writes its own
config (and state_dir) into a temporary directory and runs the command --runs times as a whole
process (``llm-upkeep ...`` through a subprocess, wall clock around it):

- ``check``: ``llm-upkeep check --json``; target probe time + 1 s.
- ``config``: ``llm-upkeep config check``; target 1 s in all (it needs no Prefect).
- ``run-server``: ``llm-upkeep run daily-health --json`` with PREFECT_API_URL set to a
  ``prefect server start`` this script starts on a free loopback port, with its own PREFECT_HOME;
  target probe time + 2.5 s. The first run starts the background runner and is reported apart.
- ``run-noserver``: the same without PREFECT_API_URL: the first run starts the background runner
  and its local server (reported apart), the next ones reuse them; target probe time + 5 s.

Probe time of one run = the slowest ``e2e_latency`` in that run's --json output. Margin of one run
= wall - probe time; per case the median of the margins is compared with the target. Everything
started here (simulators, the Prefect server, the background runners) is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]

from probe_accuracy import add_truth_args, start_sims, stop_sims  # noqa: E402 (benchmarks/ on the path above)

TARGET_MARGIN_S = {"check": 1.0, "run-server": 2.5, "run-noserver": 5.0}
TARGET_WALL_S = {"config": 1.0}
ARGV = {
    "check": ["check", "--json"],
    "config": ["config", "check"],
    "run-server": ["run", "daily-health", "--json"],
    "run-noserver": ["run", "daily-health", "--json"],
}


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def cli_command() -> list[str]:
    exe = shutil.which("llm-upkeep") or os.path.join(os.path.dirname(sys.executable), "llm-upkeep")
    return [exe] if os.path.exists(exe) else [sys.executable, "-c", "import sys; from llm_upkeep.cli import main; sys.exit(main())"]


def write_config(case_dir: Path, urls: list[str], max_tokens: int, apis: tuple[str, ...] = ("ollama", "openai")) -> Path:
    import tomli_w

    data = {
        "state_dir": str(case_dir / "state"),
        "endpoints": [
            {"name": f"sim-{api}", "api": api, "url": u, "model": "llama3:8b"}
            for api, u in zip(("ollama", "openai"), urls, strict=True)
            if api in apis
        ],
        "health": {"probe_max_tokens": max_tokens, "disk_paths": [str(case_dir)]},
        "gpu": {"enabled": False},
    }
    path = case_dir / "llm-upkeep.toml"
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


def probe_time(stdout: str) -> float | None:
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    vals = [c["value"] for c in doc.get("checks", []) if c.get("check") == "e2e_latency" and c.get("value") is not None]
    return max(vals) if vals else None


def ttfts(stdout: str) -> dict[str, float]:
    """The TTFT each endpoint's check read in this run (what the user acts on)."""
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:
        return {}
    return {c["target"]: c["value"] for c in doc.get("checks", []) if c.get("check") == "ttft" and c.get("value") is not None}


def time_once(argv: list[str], env: dict[str, str], cwd: Path) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {p.returncode}: {p.stderr.strip()[-800:]}")
    probe = probe_time(p.stdout)
    return {"wall_s": round(wall, 3), "probe_s": probe, "margin_s": None if probe is None else round(wall - probe, 3),
            "ttft_s": ttfts(p.stdout)}  # fmt: skip


def summarize(case: str, runs: list[dict], first: dict | None, load: list[str]) -> dict:
    walls = [r["wall_s"] for r in runs]
    out: dict = {"case": case, "runs": len(runs), "median_wall_s": round(statistics.median(walls), 3),
                 "walls_s": walls, "loadavg_before": load, "loadavg_after": loadavg()}  # fmt: skip
    if first is not None:
        out["first_run"] = first
    margins = [r["margin_s"] for r in runs if r["margin_s"] is not None]
    read = sorted({e for r in runs for e in r.get("ttft_s", {})})
    if read:  # per endpoint: the TTFT read in every run, against the simulators' truth
        out["ttft_read_s"] = {e: [r["ttft_s"][e] for r in runs if e in r.get("ttft_s", {})] for e in read}
    if case in TARGET_MARGIN_S:
        out["median_probe_s"] = round(statistics.median(r["probe_s"] for r in runs if r["probe_s"] is not None), 3)
        out["median_margin_s"] = round(statistics.median(margins), 3)
        out["target"] = f"<= probe time + {TARGET_MARGIN_S[case]:g} s"
        out["met"] = out["median_margin_s"] <= TARGET_MARGIN_S[case]
    else:
        out["target"] = f"< {TARGET_WALL_S[case]:g} s"
        out["met"] = out["median_wall_s"] < TARGET_WALL_S[case]
    return out


def stop_runner(state_dir: Path) -> None:
    """SIGTERM the background runner of this state_dir (it stops the server it started) and wait."""
    info = state_dir / "cli" / "runner.json"
    if not info.exists():
        return
    pid = json.loads(info.read_text())["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def measure_case(case: str, args, urls: list[str], tmp: Path, base_env: dict[str, str], api_url: str | None) -> dict:
    d = tmp / case
    d.mkdir()
    cfg = write_config(d, urls, args.max_tokens, tuple(args.apis.split(",")))
    env = {**base_env, "LLM_UPKEEP_CONFIG": str(cfg)}
    if case == "run-server":
        env["PREFECT_API_URL"] = api_url
    argv = cli_command() + ARGV[case]
    load = loadavg()
    first = None
    try:
        if case.startswith("run"):
            first = time_once(argv, env, d)  # starts the runner (and, without a server, its server)
        else:
            time_once(argv, env, d)  # page cache and .pyc files: not counted
        runs = [time_once(argv, env, d) for _ in range(args.runs)]
    finally:
        stop_runner(d / "state")
    return summarize(case, runs, first, load)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per case (after one untimed or first run)")
    ap.add_argument("--cases", default="check,config,run-server,run-noserver")
    ap.add_argument("--apis", default="ollama,openai", help="endpoints in the config: ollama, openai or both")
    add_truth_args(ap)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout (else a table, then the JSON)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(ARGV)
    if unknown:
        ap.error(f"unknown case(s) {sorted(unknown)}; known: {sorted(ARGV)}")

    tmp = Path(tempfile.mkdtemp(prefix="cli-speed-"))
    base_env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "LLM_UPKEEP_CLI_BACKGROUND")}
    base_env.update({"PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p),
                     "PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                     "DO_NOT_TRACK": "1"})  # fmt: skip
    sims, urls = start_sims(2, args.ttft, args.itl, args.tokens)
    server = None
    results = []
    try:
        api_url = None
        if "run-server" in cases:
            from llm_upkeep.run_daemon import start_server

            (tmp / "server").mkdir()
            server, api_url = start_server(tmp / "server", 120)
        for case in cases:
            results.append(measure_case(case, args, urls, tmp, base_env, api_url))
    finally:
        if server is not None:
            from llm_upkeep.run_daemon import stop_server

            stop_server(server)
        stop_sims(sims)
        shutil.rmtree(tmp, ignore_errors=True)
    for r in results:
        if "ttft_read_s" in r:
            errs = [abs(v - args.ttft) for vals in r["ttft_read_s"].values() for v in vals]
            r["ttft_error_max_s"] = round(max(errs), 4)
    out = {"cases": results, "true_ttft_s": args.ttft,
           "true_e2e_s": round(args.ttft + (min(args.max_tokens, args.tokens) - 1) * args.itl, 3),
           "cpus": os.cpu_count()}  # fmt: skip
    if not args.json:
        for r in results:
            first = f"  first run {r['first_run']['wall_s']:.2f} s" if "first_run" in r else ""
            margin = f"probe {r['median_probe_s']:.3f} s, margin {r['median_margin_s']:.2f} s" if "median_margin_s" in r else ""
            print(f"{r['case']:<13} median {r['median_wall_s']:.2f} s  {margin:<32} target {r['target']:<22} "
                  f"{'met' if r['met'] else 'MISSED'}  load {' '.join(r['loadavg_before'])}{first}", file=sys.stderr)  # fmt: skip
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
