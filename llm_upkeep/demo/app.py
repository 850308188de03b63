"""The demo's life: start every service, write the config, start Prefect, serve and run every
deployment, print the guide; stop everything on Ctrl-C, SIGTERM or failure.

Why only this here: the order of start and stop is the demo's promise (nothing left behind);
each part it starts lives in its own file (settings, processes, llm_servers, slack, s3,
demo_config, prefect_stack, runs, model_chain, guide).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_upkeep.config import ENV_CONFIG
from llm_upkeep.configbase import ConfigError
from llm_upkeep.demo.demo_config import DemoConfigMixin
from llm_upkeep.demo.guide import GuideMixin
from llm_upkeep.demo.llm_servers import LlmServers
from llm_upkeep.demo.model_chain import ModelChainMixin
from llm_upkeep.demo.prefect_stack import PrefectStackMixin
from llm_upkeep.demo.processes import Child, become_subreaper, port_in_use, stop_descendants
from llm_upkeep.demo.runs import RunOutcome, RunsMixin
from llm_upkeep.demo.s3 import ACCESS_KEY, SECRET_KEY, S3Service
from llm_upkeep.demo.settings import S3_KEY_ENV, S3_SECRET_ENV, SLACK_ENV, DemoError, default_demo_dir
from llm_upkeep.demo.slack import SlackService
from llm_upkeep.deploy import PROJECT_ENV, load_deployments, project_dir
from llm_upkeep.redact import redact


class _Stop(BaseException):
    """Raised by the SIGTERM handler so every path unwinds through the same cleanup as Ctrl-C."""


@dataclass
class Demo(DemoConfigMixin, PrefectStackMixin, RunsMixin, ModelChainMixin, GuideMixin):
    state_dir: Path
    port: int = 4200
    run_timeout_s: float = 900.0
    only: list[str] | None = None
    out: Any = print
    children: list[Child] = field(default_factory=list)
    outcomes: list[RunOutcome] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    slack_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).expanduser().resolve()
        self.root = project_dir()
        self.llm = LlmServers(self.state_dir)
        self.slack = SlackService()
        self.s3 = S3Service()
        self.slack.lines = self.slack_lines  # the receiver appends what it prints
        self._print_lock = threading.Lock()
        self._promoted = False  # evaluate-model promoted the candidate in this demo

    # ------------------------------------------------------------ paths and env
    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "llm-upkeep-demo.toml"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def say(self, text: str = "") -> None:
        with self._print_lock:
            self.out(text)

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(self.state_dir / "prefect"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.state_dir / 'prefect' / 'prefect.db'}",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                "PREFECT_UI_API_URL": self.api_url,
                "PREFECT_LOGGING_TO_API_ENABLED": "true",
                "PREFECT_RUNNER_POLL_FREQUENCY": "2",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
                ENV_CONFIG: str(self.config_path),
                PROJECT_ENV: str(self.root),
            }
        )
        # Basic auth on the demo's Prefect server when the caller asked for it (either variable):
        # the server checks PREFECT_SERVER_API_AUTH_STRING, every client sends PREFECT_API_AUTH_STRING.
        auth = os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or os.environ.get("PREFECT_API_AUTH_STRING")
        if auth:
            env["PREFECT_SERVER_API_AUTH_STRING"] = env["PREFECT_API_AUTH_STRING"] = auth
        if self.slack.webhook_url is not None:
            env[SLACK_ENV] = self.slack.webhook_url
        env[S3_KEY_ENV] = ACCESS_KEY
        env[S3_SECRET_ENV] = SECRET_KEY
        for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env[k] = "/dev/null"
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        return env

    # ------------------------------------------------------------ local services
    def start_services(self) -> None:
        self.llm.start(self.say)
        self.slack.start(self.say)
        self.s3.start(self.say)

    def stop_services(self) -> None:
        self.llm.stop()
        self.slack.stop()
        self.s3.stop()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        import asyncio

        if port_in_use(self.port):
            raise DemoError(
                f"port {self.port} is in use (another Prefect server or demo?): stop it or pass --port N"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        specs = load_deployments(self.root)
        if self.only:
            unknown = sorted(set(self.only) - {s.name for s in specs})
            if unknown:
                raise DemoError(f"prefect.yaml has no deployment named {', '.join(unknown)}")
            specs = [s for s in specs if s.name in self.only]
        os.environ.update({k: v for k, v in self.child_env().items() if k.startswith("PREFECT_")})
        self.say(f"llm-upkeep demo: state in {self.state_dir}")
        self.say("Starting the local services:")
        self.start_services()
        self.write_config()
        self.pin_models()
        os.environ.update({k: v for k, v in self.child_env().items() if k.startswith("PREFECT_")})
        t0 = time.monotonic()
        self.say(f"Starting the Prefect server on SQLite ({self.ui_url}) ...")
        self.start_prefect_server()
        self.say(f"  ready after {time.monotonic() - t0:.0f} s")
        self.say(
            f"Serving the {len(specs)} deployment(s) of prefect.yaml with their schedules (llm-upkeep serve) ..."
        )
        serve = self.start_serve([s.name for s in specs] if self.only else None)
        names = [s.name for s in specs]
        deployments = asyncio.run(self.wait_deployments(names, serve))
        for s in specs:
            sched = ", ".join(x.describe() for x in s.schedules) or "no schedule"
            self.say(f"  {s.name:<22} {sched}")
        self.say("Running each flow once:")
        asyncio.run(self.run_all(deployments, names))
        asyncio.run(self.read_artifacts())
        self.say(self.guide())
        with contextlib.suppress(OSError):
            (self.state_dir / "demo-summary.json").write_text(
                json.dumps(self.summary(), indent=2, default=str)
            )

    def stop(self) -> None:
        for child in reversed(self.children):  # serve first: it cancels its runs while the server is up
            with contextlib.suppress(Exception):
                child.stop()
        self.stop_services()
        stop_descendants()


def run_demo(
    state_dir: str | None, port: int, wait: bool, run_timeout_s: float = 900.0, only: list[str] | None = None
) -> int:
    """0: every flow ran (or waits for approval); 1: some run failed; 2: the demo could not start."""
    become_subreaper()
    demo = Demo(Path(state_dir or default_demo_dir()), port=port, run_timeout_s=run_timeout_s, only=only,
                out=lambda s: print(s, flush=True))  # fmt: skip

    def on_term(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    # Explicit, so Ctrl-C works even when a launcher started us with SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = False
    rc = 0
    try:
        demo.start()
        started = True
        rc = 0 if all(o.ok or o.state == "SKIPPED" for o in demo.outcomes) else 1
        if wait:
            print("\nPress Ctrl-C to stop everything the demo started.", flush=True)
            while all(c.alive for c in demo.children):
                time.sleep(0.5)
            dead = [c for c in demo.children if not c.alive]
            print(f"llm-upkeep demo: {dead[0].name} exited unexpectedly:\n{dead[0].tail()}", flush=True)
            rc = 1
    except (KeyboardInterrupt, _Stop):
        print("\nllm-upkeep demo: stopping ...", flush=True)
        if not started:
            rc = 130
    except DemoError as exc:
        print(f"llm-upkeep demo: {redact(exc)}", file=sys.stderr, flush=True)
        rc = 2
    except ConfigError:
        raise
    except Exception as exc:  # anything else still ends with everything stopped, and a readable line
        print(f"llm-upkeep demo: failed: {type(exc).__name__}: {redact(exc)}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        # A second Ctrl-C or TERM during cleanup must not cut it short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            demo.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
        print("llm-upkeep demo: everything it started is stopped.", flush=True)
    return rc
