"""`llm-upkeep run cost-review`: registered in llm_upkeep.cli.RUN_REGISTRARS.

Exit codes: 0 ok (or nothing configured), 1 degraded (energy or tokens missing), 2 config/usage error.
With --json exactly one JSON object goes to stdout: {"flow": "cost-review", "status", ...}.
"""

from __future__ import annotations

import argparse
import re


def _month(v: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, got {v!r}")
    return v


def _print_result(r) -> None:
    cur = r.currency
    print(f"cost-review {r.period}: {r.status.upper()}")
    print(f"  energy {r.gpu_kwh:,.2f} kWh GPU + {r.other_kwh:,.2f} kWh other, x PUE = {r.facility_kwh:,.2f} kWh: "
          f"{r.energy_cost:,.2f} {cur}")  # fmt: skip
    print(f"  hosting {r.hosting_cost:,.2f} {cur}, hardware {r.hardware_cost:,.2f} {cur}, "
          f"total {r.total_cost:,.2f} {cur}")  # fmt: skip
    print(f"  tokens {r.input_tokens:,.0f} in / {r.output_tokens:,.0f} out")
    if r.cost_per_1m_input is not None:
        print(
            f"  per 1M tokens: input {r.cost_per_1m_input:,.2f} {cur}, output {r.cost_per_1m_output:,.2f} {cur}"
        )
    for c in sorted(r.comparisons, key=lambda c: c.cloud_cost)[:8]:
        be = "" if c.break_even_factor is None else f", break-even at {c.break_even_factor:,.2f}x traffic"
        print(
            f"  vs {c.provider}/{c.model}: cloud {c.cloud_cost:,.2f} {cur}, saving {c.saving:,.2f} {cur}{be}"
        )
    if r.plot_path:
        print(f"  plot: {r.plot_path}")
    for n in r.notes:
        print(f"  note: {n}")


def cmd_run_cost_review(args) -> int:
    from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, emit_json, precheck_config, run_flow

    cfg = precheck_config(args.config)
    for s in cfg.cost.token_sources:
        if s.kind == "metrics":
            cfg.endpoint(s.endpoint)  # unknown endpoint: exit 2 before Prefect starts
    from flows.cost_review import cost_review

    result = run_flow(cost_review, config_path=args.config, month=args.month)
    if args.json:
        emit_json(result.to_json())
    else:
        _print_result(result)
    return EXIT_DEGRADED if result.status == "degraded" else EXIT_OK


def add_run_cost_review(run_subparsers) -> None:
    from llm_upkeep.cli import add_common

    p: argparse.ArgumentParser = run_subparsers.add_parser(
        "cost-review", help="energy, hosting and hardware cost per 1M tokens vs cloud API prices"
    )
    add_common(p)
    p.add_argument(
        "--month", type=_month, metavar="YYYY-MM", help="month to review (default: the previous one)"
    )
    p.set_defaults(func=cmd_run_cost_review)
