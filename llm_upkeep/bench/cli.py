"""`llm-upkeep run weekly-benchmark`: registered in llm_upkeep.cli.RUN_REGISTRARS.

Exit codes: 0 no regression, 1 regression or an endpoint that failed, 2 config / suite error.
With --json exactly one JSON object goes to stdout (BenchmarkResult.to_json()).
"""

from __future__ import annotations

import argparse

from llm_upkeep.bench.config import PROFILES


def _print_result(result) -> None:
    print(f"weekly-benchmark: {result.status.upper()} ({len(result.endpoints)} endpoint runs, "
          f"{result.duration_s:.1f} s; suite {result.suite.get('name')} {result.suite.get('hash')})")  # fmt: skip
    for e in result.endpoints:
        m = e.metrics
        ttft = m.get("ttft_p50_s")
        pr = (e.quality or {}).get("pass_rate")
        print(
            f"  {e.status.upper():<10} {e.target:<24} ttft p50 "
            f"{'-' if ttft is None else f'{ttft * 1000:.1f} ms'}, "
            f"{m.get('output_tokens_per_s') or 0:.1f} tok/s, errors {m.get('error_rate') or 0:.0%}, "
            f"pass rate {'-' if pr is None else f'{pr:.0%}'}"
        )
        for r in e.regressions:
            print(f"      regression: {r['detail']}")
        for n in e.notes:
            print(f"      note: {n}")
        if e.plot_path:
            print(f"      plot: {e.plot_path}")
    if result.report_path:
        print(f"  report: {result.report_path}")
    for d in result.alerts:
        print(f"  slack: {d.get('status')}{(': ' + d['error']) if d.get('error') else ''}")


def cmd_run_weekly_benchmark(args) -> int:
    from llm_upkeep.bench.config import with_overrides
    from llm_upkeep.bench.suites import load_suite
    from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, emit_json, precheck_config, run_flow

    cfg = precheck_config(args.config)
    overrides = {"profile": args.profile, "concurrency": args.concurrency, "rate": args.rate,
                 "repeats": args.repeats, "suite": args.suite}  # fmt: skip
    bench = with_overrides(cfg.benchmark, **overrides)
    load_suite(bench.suite, config_source=cfg.source)  # a broken suite is exit 2 before Prefect starts
    for name in bench.endpoints:
        cfg.endpoint(name)
    from flows.weekly_benchmark import weekly_benchmark

    result = run_flow(
        weekly_benchmark, config_path=args.config, save_baseline=args.save_baseline, **overrides
    )
    if args.json:
        emit_json(result.to_json())
    else:
        _print_result(result)
    return EXIT_OK if result.status == "ok" else EXIT_DEGRADED


def add_run_weekly_benchmark(run_subparsers) -> None:
    from llm_upkeep.cli import add_common

    p: argparse.ArgumentParser = run_subparsers.add_parser(
        "weekly-benchmark", help="benchmark speed and answer quality against the pinned baseline"
    )
    add_common(p)
    p.add_argument("--save-baseline", action="store_true", help="pin this run as the new baseline")
    p.add_argument("--profile", choices=PROFILES, help="load profile (overrides [benchmark] profile)")
    p.add_argument("--concurrency", type=int, metavar="N", help="requests in flight")
    p.add_argument("--rate", type=float, metavar="R", help="requests/s for constant_rate and poisson")
    p.add_argument("--repeats", type=int, metavar="N", help="sends of every prompt")
    p.add_argument("--suite", metavar="FILE", help="YAML prompt suite")
    p.set_defaults(func=cmd_run_weekly_benchmark)
