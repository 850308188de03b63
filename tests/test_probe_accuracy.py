"""The flow's TTFT is as true as a bare probe's, at 1 and 10 endpoints (issue 15), and at 200
endpoints nearly as true as at 1.

Runs benchmarks/probe_accuracy.py in its own process against ground-truth simulators in
processes of their own, bare probes and flow runs alternating in the same run. Asserted as
ratios to the bare probes, which a busy machine delays just as much: absolute figures do not
hold on a shared 2-core machine, ratios do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_flow_ttft_error_is_within_bare_probe_error_at_1_and_10_endpoints_and_holds_at_200(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_TO_API_ENABLED": "false"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "probe_accuracy.py"), "--endpoints", "1,10,200", "--rounds", "4",
         "--json"], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    one, ten, many = out["sizes"]
    assert (one["endpoints"], ten["endpoints"], many["endpoints"]) == (1, 10, 200)
    assert one["readings_per_side"] == 4 and ten["readings_per_side"] == 40
    f1, f10 = one["flow"]["process"], ten["flow"]["process"]
    f200 = many["flow"]["process"]
    assert f1["readings"] == 4 and f10["readings"] == 40 and f200["readings"] == 800, "every endpoint of every run"
    # 1 endpoint: the flow adds at most 10 ms to the bare probe's error (target: <= 10 ms).
    assert f1["ttft_error_ms"] <= one["bare"]["ttft_error_ms"] + 10, out
    # 10 endpoints: the flow's median error is at most 1.2 x the bare probes' (it was 4.8 x).
    assert f10["ttft_error_ms"] <= 1.2 * ten["bare"]["ttft_error_ms"], out
    # e2e is not a target of its own, but it must not drift toward the flow's total time either.
    assert f10["e2e_error_ms"] <= 1.5 * ten["bare"]["e2e_error_ms"], out
    # 200 endpoints: the bare side (one shared client, as a quick script would) is no reference
    # there, the flow's own error at 1 endpoint is. Measured on a slow 2-core machine: 9.6-10.0 ms
    # against 4.5-5.3 ms (2 x); 232 ms (45 x) when the probe process's starts were fixed in advance
    assert f200["ttft_error_ms"] <= 5 * f1["ttft_error_ms"], out
