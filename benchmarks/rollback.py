"""End-to-end promote and rollback times on the real llama.cpp server (the playbook: under 60 s).

    .venv/bin/python benchmarks/rollback.py [--rounds 5] [--json]

Two tiny random llama GGUFs (seeds 1 and 2) in a versions dir; the server runs as a service
(tests/models_service.py) whose --model is the active symlink; the configured restart command
is that service's `restart` (stop with SIGTERM and wait, start detached), like `systemctl restart`.
Each round promotes v2 (verification included: it is pinned, so its sha256 is checked) and
rolls back to v1, timing swap -> restart -> first complete answer.

For reference the script also times a bare restart of the same service to its first answer
without llm-upkeep (process start + model load): what is left of our total beyond it is
llm-upkeep's own overhead (swap, ledger, history, lock, probing cadence). Our bar: under 5 s
plus model load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from llm_upkeep.config import load_config  # noqa: E402
from llm_upkeep.models.active import swap_symlink  # noqa: E402
from llm_upkeep.models.promote import promote_model, rollback_model  # noqa: E402
from llm_upkeep.sim.tiny_gguf import write_tiny_llama_gguf  # noqa: E402
from tests.llamacpp_fixtures import free_port  # noqa: E402
from tests.models_fixtures import LlamaService  # noqa: E402
from tests.models_service import service_restart  # noqa: E402


def bare_restart(svc: LlamaService) -> float:
    """Restart to first complete chat answer, no llm-upkeep involved."""
    t0 = time.perf_counter()
    service_restart(svc.dir)
    body = {"model": svc.alias, "messages": [{"role": "user", "content": "test"}], "max_tokens": 8}
    with httpx.Client(timeout=5.0, trust_env=False) as c:
        while True:
            try:
                if c.post(svc.url + "/v1/chat/completions", json=body).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    d = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
    svc = None
    try:
        versions = d / "versions"
        v1 = write_tiny_llama_gguf(versions / "tiny-v1.gguf", seed=1)
        write_tiny_llama_gguf(versions / "tiny-v2.gguf", seed=2)
        link = d / "active.gguf"
        swap_symlink(link, v1)
        svc = LlamaService(d / "svc", link, free_port())
        cmd = ", ".join(f'"{a}"' for a in svc.restart_command)
        cfg_path = d / "llm-upkeep.toml"
        cfg_path.write_text(
            f'state_dir = "{d / "state"}"\n'
            f'[[endpoints]]\nname = "llamacpp"\napi = "openai"\nurl = "{svc.url}"\nmodel = "tiny"\ntimeout_s = 30.0\n'
            "[models]\nprobe_timeout_s = 60.0\nprobe_interval_s = 0.05\nmax_switches_per_day = 1000\n"
            f'[[models.endpoints]]\nendpoint = "llamacpp"\nversions_dir = "{versions}"\nactive_link = "{link}"\n'
            f"restart_command = [{cmd}]\n"
        )
        cfg = load_config(cfg_path)
        svc.start()
        svc.wait_ready()
        bare = [bare_restart(svc) for _ in range(args.rounds)]
        rows = []
        for _ in range(args.rounds):
            p = promote_model(cfg, "tiny-v2.gguf", reason="benchmark")
            b = rollback_model(cfg, reason="benchmark")
            if not (p.ok and b.ok):
                print(f"switch failed: {p.detail} / {b.detail}", file=sys.stderr)
                return 1
            rows.append((p, b))
        out = {
            "rounds": args.rounds,
            "model_bytes": v1.stat().st_size,
            "bare_restart_to_answer_s": stats(bare),
            "promote_total_s": stats([p.seconds for p, _ in rows]),
            "promote_restart_cmd_s": stats([p.restart_s for p, _ in rows]),
            "promote_ready_s": stats([p.ready_s for p, _ in rows]),
            "rollback_total_s": stats([b.seconds for _, b in rows]),
            "rollback_restart_cmd_s": stats([b.restart_s for _, b in rows]),
            "rollback_ready_s": stats([b.ready_s for _, b in rows]),
            "load_avg": os.getloadavg(),
        }
        out["rollback_overhead_beyond_bare_restart_s"] = round(
            out["rollback_total_s"]["median"] - out["bare_restart_to_answer_s"]["median"], 3
        )
        if args.json:
            print(json.dumps(out))
        else:
            print(f"{args.rounds} rounds, tiny GGUF of {out['model_bytes'] / 1e6:.1f} MB, load average "
                  f"{', '.join(f'{x:.1f}' for x in out['load_avg'])}")  # fmt: skip
            for k in ("bare_restart_to_answer_s", "promote_total_s", "promote_restart_cmd_s", "promote_ready_s",
                      "rollback_total_s", "rollback_restart_cmd_s", "rollback_ready_s"):  # fmt: skip
                s = out[k]
                print(f"  {k:<28} median {s['median']:6.2f} s  (min {s['min']:.2f}, max {s['max']:.2f})")
            print(f"  rollback overhead beyond a bare restart to first answer: "
                  f"{out['rollback_overhead_beyond_bare_restart_s']:+.2f} s (playbook bar: 60 s total)")  # fmt: skip
        return 0
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
