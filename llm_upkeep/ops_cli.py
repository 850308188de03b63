"""Operations commands: `demo`, `serve`, `deploy`, `worker` (registered in cli.TOP_REGISTRARS)."""

from __future__ import annotations

import os
import sys

from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, EXIT_USAGE, _quiet_prefect_defaults, emit_json
from llm_upkeep.redact import redact


def cmd_demo(args) -> int:
    from llm_upkeep.demo import run_demo

    _quiet_prefect_defaults()
    return run_demo(
        args.state_dir, args.port, wait=not args.no_wait, run_timeout_s=args.run_timeout, only=args.only
    )


def cmd_serve(args) -> int:
    from llm_upkeep.cli import precheck_config
    from llm_upkeep.serve import serve_project

    if args.config or os.environ.get("LLM_UPKEEP_CONFIG"):
        precheck_config(args.config)
    _quiet_prefect_defaults()
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "llm-upkeep serve: PREFECT_API_URL is not set, so Prefect would use a temporary server that "
            "forgets every schedule when this process stops. Set it to your Prefect server, e.g. "
            "http://127.0.0.1:4200/api (`prefect server start`).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    serve_project(args.config, root=args.project_dir, names=args.name or None, limit=args.limit)
    return EXIT_OK


def _fleet_specs(root, specs, config_path):
    """prefect.yaml's deployments, placed on the fleet's queues when [fleet] lists hosts."""
    from llm_upkeep.config import load_config
    from llm_upkeep.deploy import flow_parameters, import_flow
    from llm_upkeep.fleet import fleet_deployment_specs

    cfg = load_config(config_path)
    if not cfg.fleet.enabled:
        return specs, None
    params = {s.name: set(flow_parameters(import_flow(s, root))) for s in specs}
    return fleet_deployment_specs(specs, cfg, params), cfg.fleet.work_pool


def cmd_deploy(args) -> int:
    from llm_upkeep.configbase import ConfigError
    from llm_upkeep.deploy import DeployError, deploy_project, load_deployments, project_dir

    _quiet_prefect_defaults()
    root = project_dir(args.project_dir)
    specs = load_deployments(root)
    if args.name:
        unknown = sorted(set(args.name) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"no deployment named {', '.join(unknown)}", file=root / "prefect.yaml")
        specs = [s for s in specs if s.name in args.name]
    specs, fleet_pool = _fleet_specs(root, specs, args.config)
    try:
        report = deploy_project(root, specs, pool=args.pool or fleet_pool, timeout_s=args.timeout)
    except DeployError as exc:
        print(f"llm-upkeep deploy: {redact(exc)}", file=sys.stderr)
        if args.json:
            emit_json({"ok": False, "error": redact(exc)})
        return EXIT_DEGRADED
    if args.json:
        emit_json(report.to_json())
    else:
        print(f"Registered with {report.api_url} (work pool(s): {', '.join(report.pools)}"
              + (f"; created {', '.join(report.created_pools)}" if report.created_pools else "") + ")")  # fmt: skip
        for d in report.deployments:
            sched = "; ".join(
                f"{s['schedule']} ({s['timezone']}){'' if s['active'] else ' inactive'}"
                for s in d["schedules"]
            )
            print(
                f"  {d['flow']}/{d['name']:<28} queue {d['work_queue'] or '-':<16} {sched or 'no schedule'}"
            )
        if report.missing:
            print(f"NOT registered: {', '.join(report.missing)}\n{report.output[-3000:]}", file=sys.stderr)
        else:
            pools = " ".join(report.pools)
            print(f"Start a worker: llm-upkeep worker (pool {pools}); on a fleet, one per host: "
                  "llm-upkeep worker --host NAME")  # fmt: skip
    return EXIT_OK if report.ok else EXIT_DEGRADED


def cmd_worker(args) -> int:
    from llm_upkeep.config import ENV_CONFIG, load_config
    from llm_upkeep.configbase import ConfigError
    from llm_upkeep.deploy import PROJECT_ENV, project_dir
    from llm_upkeep.fleet import HOST_ENV, worker_command

    _quiet_prefect_defaults()
    cfg = load_config(args.config)
    fleet = cfg.fleet
    pool = args.pool or fleet.work_pool
    if args.host:
        queue, name = fleet.host(args.host).queue, f"llm-upkeep-{args.host}"
    elif args.central:
        if not fleet.enabled:
            raise ConfigError("--central needs [fleet] hosts; without a fleet run `llm-upkeep worker`",
                              file=cfg.source, key="fleet.hosts")  # fmt: skip
        queue, name = fleet.central_queue, "llm-upkeep-central"
    else:
        queue, name = args.queue, f"llm-upkeep-{args.queue or 'all'}"
    if not os.environ.get("PREFECT_API_URL"):
        print("llm-upkeep worker: set PREFECT_API_URL to your Prefect server (e.g. http://HOST:4200/api)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    env = dict(os.environ)
    env[PROJECT_ENV] = str(project_dir(args.project_dir))
    if cfg.source:
        env[ENV_CONFIG] = os.path.abspath(cfg.source)
    env.pop(HOST_ENV, None)
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", f"{fleet.worker_poll_s:g}")
    if args.host:
        env[HOST_ENV] = args.host  # every flow run of this worker knows which host it is on
    cmd = worker_command(pool, queue, name, args.limit, warm=not args.cold, state_dir=str(cfg.state_path))
    print(f"llm-upkeep worker: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
    if args.dry_run:
        emit_json({"command": cmd, "pool": pool, "queue": queue, "host": env.get(HOST_ENV), "warm": not args.cold})
        return EXIT_OK
    # exec: systemd's stop signal and the exit status go straight to Prefect's worker.
    os.execvpe(cmd[0], cmd, env)
    return EXIT_OK  # not reached


def add_ops_commands(sub) -> None:
    p = sub.add_parser("demo", help="the whole thing locally: Prefect UI, simulated servers, S3, Slack")
    p.add_argument("--state-dir", metavar="D", help="where the demo keeps its state (default: data dir/demo)")
    p.add_argument("--port", type=int, default=4200, help="port of the Prefect server and UI (default 4200)")
    p.add_argument(
        "--no-wait", action="store_true", help="run every flow once, then stop everything and exit"
    )
    p.add_argument(
        "--only", action="append", metavar="DEPLOYMENT", help="run only these deployments (repeatable)"
    )
    p.add_argument(
        "--run-timeout", type=float, default=900.0, help="seconds to wait for the runs (default 900)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve every deployment of prefect.yaml on its schedule (one host)")
    p.add_argument("--config", metavar="F", help="config file the flows use")
    p.add_argument("--project-dir", metavar="D", help="checkout holding prefect.yaml (default: this one)")
    p.add_argument("--name", action="append", metavar="DEPLOYMENT", help="serve only these (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="most flow runs at the same time")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("deploy", help="register prefect.yaml's deployments with a Prefect server")
    p.add_argument(
        "--pool", metavar="NAME", help="process work pool for every deployment (created if missing)"
    )
    p.add_argument("--config", metavar="F", help="config file; its [fleet] hosts get per-host deployments")
    p.add_argument("--name", action="append", metavar="DEPLOYMENT",
                   help="register only these prefect.yaml deployments (and their per-host copies; repeatable)")  # fmt: skip
    p.add_argument("--project-dir", metavar="D", help="checkout holding prefect.yaml (default: this one)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds `prefect deploy` may take")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("worker", help="start a Prefect process worker for this host's work queue")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--host", metavar="NAME", help="fleet host whose queue this worker serves")
    g.add_argument("--central", action="store_true", help="serve the fleet's central queue")
    g.add_argument("--queue", metavar="Q", help="a work queue by name (default: every queue of the pool)")
    p.add_argument("--pool", metavar="NAME", help="work pool (default: [fleet].work_pool)")
    p.add_argument("--config", metavar="F", help="config file (passed to the flows via LLM_UPKEEP_CONFIG)")
    p.add_argument("--project-dir", metavar="D", help="checkout the flows run from (default: this one)")
    p.add_argument("--limit", type=int, default=None, help="most flow runs at the same time")
    p.add_argument("--cold", action="store_true",
                   help="start each flow run as a new interpreter (Prefect's default) instead of forking it "
                        "from a pre-imported process")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the worker command as JSON, do not start it")
    p.set_defaults(func=cmd_worker)
