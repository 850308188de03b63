"""``llm-upkeep worker``'s process: Prefect's process worker whose runs start warm.

`python -m llm_upkeep.warm_start.worker --pool P [--work-queue Q] --name N [--limit L]` does what
`prefect worker start --type process` does (same pool, queues, limit, signal handling: the first
SIGTERM lets running flow runs finish, a second kills them), with one difference: a run whose
deployment sets no ``command`` job variable gets the warm launcher as its command (see
llm_upkeep/warm_start/__init__.py). A deployment that sets its own command keeps it.

The zygote is started here, before Prefect is imported and before any thread exists in this
process, and it leaves with the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from llm_upkeep.warm_start.wire import SOCKET_ENV

LAUNCHER = Path(__file__).with_name("launch.py")
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def socket_path(state_dir: str | None, name: str) -> str:
    """state_dir/worker/<name>.sock (directory 0700), or a private temp dir when that is too long."""
    if state_dir:
        d = Path(state_dir) / "worker"
        path = d / f"{name}.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
            return str(path)
    return str(Path(tempfile.mkdtemp(prefix="llm-upkeep-warm-")) / "zygote.sock")


def preload_modules(project: str | None) -> list[str]:
    """The flow modules of prefect.yaml's deployments (what the runs will load)."""
    if not project:
        return []
    try:
        from llm_upkeep.deploy import load_deployments

        return sorted({spec.module for spec in load_deployments(Path(project))})
    except Exception:  # a broken prefect.yaml is the deploy command's to report; runs start cold-ish
        return []


def launcher_command() -> str:
    return shlex.join([sys.executable, "-I", "-S", str(LAUNCHER)])


def start_zygote(sock: str, project: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llm_upkeep.warm_start.zygote", "--socket", sock,
           "--preload", ",".join(preload_modules(project))]  # fmt: skip
    if project:
        cmd += ["--project-dir", project]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


def make_worker_class():
    """The warm process worker's class. Also makes this process's own Prefect API clients (a set
    per run it submits) share one TLS context per CA bundle version; a rotated bundle is re-read
    at the next client (llm_upkeep/warm_start/tls.py)."""
    from prefect.utilities.dispatch import get_registry_for_type
    from prefect.workers.base import BaseWorker
    from prefect.workers.process import ProcessWorker

    class WarmProcessWorker(ProcessWorker):
        """A process worker whose runs without their own command start through the zygote."""

        async def run(self, flow_run, configuration, task_status=None):
            if not configuration._command_configured and os.environ.get(SOCKET_ENV):
                configuration.command = launcher_command()
                configuration._command_configured = True
            return await super().run(flow_run, configuration, task_status=task_status)

    from llm_upkeep.warm_start.tls import share_api_tls_contexts

    share_api_tls_contexts()
    registry = get_registry_for_type(BaseWorker)
    if registry is not None:
        registry["process"] = ProcessWorker  # the subclass must not replace Prefect's own type
    return WarmProcessWorker


async def run_worker(pool: str, queues: list[str], name: str, limit: int | None) -> None:
    from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS
    from prefect.utilities.processutils import setup_signal_handlers_worker

    setup_signal_handlers_worker(os.getpid(), "the llm-upkeep worker", print)
    cls = make_worker_class()
    worker = cls(name=name, work_pool_name=pool, work_queues=queues or None, limit=limit,
                 heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()))  # fmt: skip
    try:
        await worker.start(with_healthcheck=False, printer=print)
    except asyncio.CancelledError:
        print(f"Worker {name!r} stopped!")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Prefect process worker whose flow runs start warm")
    ap.add_argument("--pool", required=True)
    ap.add_argument("--work-queue", action="append", default=[])
    ap.add_argument("--name", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--state-dir", default=None, help="where the zygote's socket lives")
    args = ap.parse_args(argv)
    from llm_upkeep.deploy import PROJECT_ENV

    sock = socket_path(args.state_dir, args.name)
    zygote = start_zygote(sock, os.environ.get(PROJECT_ENV))
    os.environ[SOCKET_ENV] = sock  # the runs' environment is this process's: the launcher finds it
    try:
        asyncio.run(run_worker(args.pool, args.work_queue, args.name, args.limit))
    finally:
        zygote.terminate()
        try:
            zygote.wait(10)
        except subprocess.TimeoutExpired:
            zygote.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
