"""`llm-upkeep check`: the daily checks without Prefect, in about the time the probes take."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import tomli_w

from llm_upkeep.clients import make_http_client
from llm_upkeep.config import load_config
from llm_upkeep.probe import probe_endpoint
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.timing import as_true_as_bare

# Runs the CLI in-process and reports whether anything imported Prefect (or pandas: 1 s at start).
NO_PREFECT = (
    "import sys; from llm_upkeep.cli import main; rc = main(sys.argv[1:]); "
    "sys.stderr.write('PREFECT-IMPORTED=%s\\n' % any(m.split('.')[0] in ('prefect', 'pandas') for m in sys.modules)); "
    "sys.exit(rc)"
)


IMPORTS_ONLY = "import llm_upkeep.cli as c, llm_upkeep.quick_check; c.build_parser()"


def cli(*args, timeout=60):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", NO_PREFECT, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ})  # fmt: skip
    return r, time.perf_counter() - t0


async def bare_probes(endpoints):
    async with make_http_client() as http:
        return await asyncio.gather(*[probe_endpoint(e, http) for e in endpoints])


def config(tmp_path, endpoints, **health):
    data = {"state_dir": str(tmp_path / "state"), "endpoints": endpoints, "gpu": {"enabled": False},
            "health": {"disk_paths": [str(tmp_path)], **health}}  # fmt: skip
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(data))
    return str(p)


def test_check_json_both_apis_true_ttft_no_prefect_and_fast(tmp_path):
    with SimServer(SimBehavior(ttft_s=0.3, itl_s=0.02, tokens=60)) as a, SimServer(
        SimBehavior(ttft_s=0.3, itl_s=0.02, tokens=60)
    ) as b:
        cfg = config(tmp_path, [{"name": "ollama-a", "api": "ollama", "url": a.url, "model": "llama3:8b"},
                                {"name": "openai-b", "api": "openai", "url": b.url, "model": "llama3:8b"}])  # fmt: skip
        r, wall = cli("check", "--config", cfg, "--json")
        assert r.returncode == 0, r.stderr[-2000:]
        assert "PREFECT-IMPORTED=False" in r.stderr
        out = json.loads(r.stdout)
        assert out["flow"] == "check" and out["status"] == "ok"
        checks = {(c["check"], c["target"]): c for c in out["checks"]}
        assert {k[0] for k in checks} >= {"endpoint_up", "ttft", "e2e_latency", "tokens_per_second", "disk_usage"}
        # Timed against a plain process that imports the same code (median of 3 each, now, here).
        # TTFT against bare probes of the same servers, alternating, medians of 4 readings each.
        imports, overheads, bare = [], [], {"ollama-a": [], "openai-b": []}
        seen = {t: [checks[("ttft", t)]["value"]] for t in bare}
        for _ in range(3):
            for p in asyncio.run(bare_probes(load_config(cfg).endpoints)):
                bare[p.endpoint].append(p.ttft_s)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", IMPORTS_ONLY], check=True)
            imports.append(time.perf_counter() - t0)
            again, wall2 = cli("check", "--config", cfg, "--json")
            out2 = json.loads(again.stdout)
            overheads.append(wall2 - out2["duration_s"])
            for c in out2["checks"]:
                if c["check"] == "ttft":
                    seen[c["target"]].append(c["value"])
        for p in asyncio.run(bare_probes(load_config(cfg).endpoints)):
            bare[p.endpoint].append(p.ttft_s)
        for t in bare:
            # Tells TTFT from total time (0.6 s) and from a reading that waited on other work (+0.1 s).
            assert as_true_as_bare(statistics.median(seen[t]), 0.30, statistics.median(bare[t]), slack=0.02), (seen, bare)
        # Target <= probe time + 1 s (0.45-0.6 s of imports on a quiet machine): past its probes,
        # the check costs its imports and little more (config, event loop, output, exit). A ratio,
        # because a loaded machine slows both alike (measured 1.2-1.5 x, quiet or at load 15).
        assert statistics.median(overheads) <= 1.6 * statistics.median(imports), (overheads, imports)


def test_check_table_degraded_exit_1_without_traceback(tmp_path):
    with SimServer(SimBehavior(ttft_s=0.05, itl_s=0.005, tokens=8)) as a:
        a.set_fault("http_500")
        cfg = config(tmp_path, [{"name": "x", "api": "ollama", "url": a.url, "model": "llama3:8b"}], probe_retries=2)
        r, _ = cli("check", "--config", cfg)
        assert r.returncode == 1
        assert r.stdout.startswith("check: DEGRADED")
        assert "endpoint_up" in r.stdout and "http_5xx" in r.stdout
        assert "Traceback" not in r.stderr
        assert len([q for q in a.requests if q["path"] == "/api/chat"]) == 1, "no retries: one probe per endpoint"
        assert not (tmp_path / "state" / "history.sqlite").exists(), "read-only: no history row"


def test_check_config_error_exit_2_and_unknown_endpoint(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[health]\nttft_alert_s = 'soon'\n")
    r, _ = cli("check", "--config", str(bad), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["key"] == "health.ttft_alert_s"
    cfg = config(tmp_path, [{"name": "x", "api": "ollama", "url": "http://127.0.0.1:9", "model": "m"}])
    r, _ = cli("check", "--config", cfg, "--endpoint", "nope")
    assert r.returncode == 2 and "no endpoint named 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_config_check_imports_no_prefect(tmp_path):
    cfg = config(tmp_path, [{"name": "x", "api": "ollama", "url": "http://127.0.0.1:9", "model": "m"}])
    r, _ = cli("config", "check", "--config", cfg)
    assert r.returncode == 0 and "PREFECT-IMPORTED=False" in r.stderr


def test_check_with_no_endpoint_says_nothing_was_checked(tmp_path):
    cfg = config(tmp_path, [])
    r, _ = cli("check", "--config", cfg, "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["status"] == "nothing_checked"
