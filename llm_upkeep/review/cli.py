"""`llm-upkeep run weekly-review` and `llm-upkeep run gpu-sampling`, registered in llm_upkeep.cli.

Exit codes: 0 ok, 1 findings or degraded, 2 config error (ConfigError propagates to main()).
"""

from __future__ import annotations

from datetime import UTC, datetime

from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, add_common, emit_json, precheck_config, run_flow

_ICON = {"ok": "ok   ", "warn": "WARN ", "alert": "ALERT", "error": "ERROR", "skipped": "skip "}


def _week_end(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _print_review(result) -> None:
    print(f"weekly-review: {result.status.upper()} ({result.window_start:%Y-%m-%d} to "
          f"{result.window_end:%Y-%m-%d} UTC, {result.duration_s:.1f} s)")  # fmt: skip
    for name, s in result.sections.items():
        print(f"  {_ICON[s.verdict]} {name:<16} {s.summary}")
    errors = result.sections.get("errors")
    for f in (errors.details.get("findings") or [])[:10] if errors else []:
        print(f"      - [{f['severity']}] {f['title']}")
        for ev in f.get("evidence", [])[:1]:
            print(f"          {ev[:200]}")
    for d in result.alerts:
        print(f"  slack: {d.status}{(': ' + d.error) if d.error else ''}")


def cmd_run_weekly_review(args) -> int:
    precheck_config(args.config)
    from flows.weekly_review import weekly_review

    result = run_flow(
        weekly_review, config_path=args.config, week_end=args.week_end, send_slack=not args.no_slack
    )
    if args.json:
        emit_json(result.to_json())
    else:
        _print_review(result)
    return EXIT_OK if result.status == "ok" else EXIT_DEGRADED


def cmd_run_gpu_sampling(args) -> int:
    precheck_config(args.config)
    from flows.gpu_sampling import gpu_sampling

    result = run_flow(gpu_sampling, config_path=args.config)
    if args.json:
        emit_json(result.to_json())
    else:
        extra = f" ({result.reason})" if result.reason else ""
        print(
            f"gpu-sampling: {result.status.upper()}: {result.samples} sample(s) from {result.gpus} GPU(s){extra}"
        )
    return EXIT_DEGRADED if result.status == "error" else EXIT_OK


def add_run_weekly_review(run_subparsers) -> None:
    p = run_subparsers.add_parser(
        "weekly-review", help="error logs, GPU temperatures, model updates, driver drift"
    )
    add_common(p)
    p.add_argument(
        "--week-end",
        type=_week_end,
        default=None,
        metavar="ISO",
        help="end of the reviewed week (default: now, rounded down to the hour; naive = UTC)",
    )
    p.add_argument("--no-slack", action="store_true", help="do not post the Slack summary")
    p.set_defaults(func=cmd_run_weekly_review)


def add_run_gpu_sampling(run_subparsers) -> None:
    p = run_subparsers.add_parser("gpu-sampling", help="store one NVML reading per GPU in the history")
    add_common(p)
    p.set_defaults(func=cmd_run_gpu_sampling)
