"""`llm-upkeep run liveness`, registered in llm_upkeep.cli: one liveness pass now.

Exit codes: 0 every endpoint served, 1 one did not, 2 config error.
"""

from __future__ import annotations

from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, add_common, emit_json, precheck_config, run_flow


def cmd_run_liveness(args) -> int:
    precheck_config(args.config)
    from flows.liveness import liveness

    result = run_flow(liveness, config_path=args.config)
    if args.json:
        emit_json(result.model_dump(mode="json"))
    else:
        print(f"liveness: {result.status.upper()}")
        for p in result.probes:
            what = f"{p.latency_s:.3f} s" if p.ok and p.latency_s is not None else (p.error or "down")
            print(f"  {'ok  ' if p.ok else 'DOWN'} {p.endpoint:<20} {what}")
        for t in result.transitions:
            print(f"  message owed: {t.endpoint} {t.kind}; delivered: {f'{t.endpoint}:{t.kind}' in result.sent}")
    return EXIT_OK if result.status in ("ok", "skipped") else EXIT_DEGRADED


def add_run_liveness(run_sub) -> None:
    p = run_sub.add_parser("liveness", help="one-token generation per endpoint; alert once when down, once when back")
    add_common(p)
    p.set_defaults(func=cmd_run_liveness)
