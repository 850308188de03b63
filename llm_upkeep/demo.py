"""`llm-upkeep demo`: the whole thing on one machine, in one command, with nothing left behind.

Starts a Prefect server on SQLite in the state dir, simulated LLM servers (a healthy Ollama
and its staging instance sharing one model store on disk, and a vLLM with a planted
slow-first-token fault), a model registry, an S3 server (moto) and a Slack receiver that prints
what it gets; writes a config pointing at them; serves every deployment of prefect.yaml
(`llm-upkeep serve` in a subprocess, the same machinery a single host uses in production);
runs each flow once, the model chain included (evaluate-model promotes a candidate,
rollback-model puts the previous version back); prints where to click.

Why the process care: a demo that leaves a Prefect server or a flow run behind costs the
newcomer a port and their trust. Every child runs in its own session and is stopped by
process group; the demo also makes itself the child subreaper (Linux), so a flow-run process
orphaned by a crash is re-parented to the demo and stopped with the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from llm_upkeep.config import ENV_CONFIG, default_state_dir, parse_config
from llm_upkeep.configbase import ConfigError
from llm_upkeep.deploy import PROJECT_ENV, load_deployments, project_dir
from llm_upkeep.redact import redact

SLACK_ENV = "LLM_UPKEEP_DEMO_SLACK_WEBHOOK"
S3_KEY_ENV = "LLM_UPKEEP_DEMO_S3_KEY"
S3_SECRET_ENV = "LLM_UPKEEP_DEMO_S3_SECRET"
BUCKET = "llm-upkeep-demo"
HEALTHY, FAULTY = "ollama-healthy", "vllm-slow"
FAULT = "slow_first_token"
TTFT_ALERT_S = 2.0
SLOW_FIRST_TOKEN_S = 3.0
STAGING = "ollama-staging"
# The model chain: production serves the alias PROD_MODEL, an Ollama tag that a promotion
# overwrites (the previous version kept under a backup tag). At start it is CURRENT, pinned in
# models.lock; CANDIDATE waits in the registry. Upstream has moved PROD_MODEL to the candidate's
# build, so the weekly review reports an update, and evaluate-model tests it before it goes live.
PROD_MODEL, CURRENT, CANDIDATE = "llama3:8b", "llama3:8b-v1", "llama3:8b-v2"
MODEL_BYTES = 300_000  # small fake weights: hashing and pulling them keeps the demo fast
# Run order: daily-health first (its report is what a newcomer looks at first), then the rest
# together, then the ones that need another's result: the drill restores the backup's snapshot,
# and a second weekly-benchmark compares itself with the baseline the first one pinned. The
# model chain runs last, one flow at a time: evaluate-model's benchmark compares the candidate
# with production, so nothing else should load the machine meanwhile, and rollback-model
# undoes the promotion evaluate-model made.
RUN_FIRST = ("daily-health",)
RUN_LAST = ("restore-drill",)
RUN_AGAIN = ("weekly-benchmark",)
RUN_CHAIN = ("evaluate-model", "rollback-model")
# Parameters the demo passes where the flow takes them (filtered by each deployment's schema).
# evaluate-model uses the automatic policy so the demo does not wait for a person; a run
# started from the UI follows the config's manual approval (a Resume form).
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {
    "daily-health": {"allow_restart": True},
    "scheduled-restart": {},
    "evaluate-model": {"candidate": CANDIDATE, "endpoint": HEALTHY, "approval": "auto"},
    "rollback-model": {"endpoint": HEALTHY, "reason": "demo: undo the promotion evaluate-model made"},
    "runbook": {"dry_run": True, "wait_for_approval": False},
}
# The simulated servers answer the runbook's canary question right, as a healthy model would.
CANARY = {"capital of France": "Paris."}


def default_demo_dir() -> str:
    return os.path.join(default_state_dir(), "demo")


# ---------------------------------------------------------------- processes


def become_subreaper() -> bool:
    """PR_SET_CHILD_SUBREAPER: orphaned descendants re-parent to us, so none can escape the stop."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def stop_descendants(timeout_s: float = 10.0) -> list[int]:
    """SIGTERM then SIGKILL every process below this one; returns the pids that needed a signal."""
    import psutil

    me = psutil.Process()
    procs = me.children(recursive=True)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    # Reap zombies re-parented to us by the subreaper flag.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    return [p.pid for p in procs]


class Child:
    """A subprocess in its own session (so our terminal's Ctrl-C reaches it only through us)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the whole group (the Runner cancels its flow runs on it), SIGKILL if it lingers."""
        import psutil

        try:
            seen = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            seen = []
        if self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in seen:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


class _Stop(BaseException):
    """Raised by the SIGTERM handler so every path unwinds through the same cleanup as Ctrl-C."""


# ---------------------------------------------------------------- the demo


@dataclass
class RunOutcome:
    deployment: str
    flow: str
    run_id: str | None
    state: str = "NOT_STARTED"
    state_name: str = ""
    message: str = ""
    seconds: float | None = None
    result: str = ""  # what the run changed, where the demo can tell (the model chain)
    history_from: int = 0  # model switches recorded before the run started

    @property
    def ok(self) -> bool:
        return self.state in ("COMPLETED", "PAUSED")


@dataclass
class Demo:
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
        self._sims: list[Any] = []
        self._registry_server: Any = None
        self._s3 = None
        self._slack = None
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
        if self._slack is not None:
            env[SLACK_ENV] = self._slack.webhook_url
        env[S3_KEY_ENV] = "demo-access-key"
        env[S3_SECRET_ENV] = "demo-secret-key"
        for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env[k] = "/dev/null"
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        return env

    # ------------------------------------------------------------ local services
    @property
    def ollama_store(self) -> Path:
        return self.state_dir / "ollama-models"

    @property
    def ollama_registry(self) -> Path:
        return self.state_dir / "ollama-registry"

    def seed_models(self) -> None:
        """The registry holds both versions; the store has the current one, served as PROD_MODEL.

        Made again on every run (same bytes, same names): a second demo in the same state dir
        starts from the current version too, with the history of the earlier runs kept.
        """
        from llm_upkeep.models.store import write_manifest
        from llm_upkeep.sim.ollama_store import fake_weights, install_model, publish_model

        reg = self.ollama_registry
        publish_model(reg, CURRENT, fake_weights(1, MODEL_BYTES))
        cand = publish_model(reg, CANDIDATE, fake_weights(2, MODEL_BYTES))
        write_manifest(reg, PROD_MODEL, cand.path.read_bytes())  # upstream moved the tag to the new build
        cur = install_model(reg, self.ollama_store, CURRENT)
        write_manifest(self.ollama_store, PROD_MODEL, cur.path.read_bytes())

    def start_services(self) -> None:
        from llm_upkeep.sim.llm_server import SimBehavior, SimServer
        from llm_upkeep.sim.ollama_store import RegistryServer, StoreSimServer, store_behavior
        from llm_upkeep.sim.slack_sink import SlackSink, format_message

        # Production and staging: two Ollama instances on one host sharing one model store (as
        # the model tests run them), so staging benchmarks the very blobs production will serve.
        self.seed_models()
        store, reg = self.ollama_store, self.ollama_registry
        timing = {"ttft_s": 0.15, "itl_s": 0.02, "tokens": 24, "answers": dict(CANARY)}
        healthy = StoreSimServer(store_behavior(store, reg, PROD_MODEL, **timing), store, reg).start()
        self._sims.append(healthy)
        slow = SimServer(
            SimBehavior(ttft_s=0.15, itl_s=0.02, tokens=24, model="meta-llama/Llama-3.1-8B-Instruct",
                        slow_first_token_s=SLOW_FIRST_TOKEN_S, answers=dict(CANARY))
        ).start()  # fmt: skip
        slow.set_fault(FAULT)
        self._sims.append(slow)
        staging = StoreSimServer(store_behavior(store, reg, CURRENT, **timing), store, reg).start()
        self._sims.append(staging)
        self._registry_server = RegistryServer(reg).start()
        self.say(
            f"  LLM server {HEALTHY:<15} {healthy.url}  (simulated Ollama, healthy, serves {PROD_MODEL})"
        )
        self.say(f"  LLM server {FAULTY:<15} {slow.url}  (simulated vLLM, planted fault: {FAULT})")
        self.say(
            f"  LLM server {STAGING:<15} {staging.url}  (simulated Ollama, staging for model evaluation)"
        )
        self.say(f"  Ollama model store         {store}  ({PROD_MODEL} = {CURRENT}, shared by both Ollamas)")
        held = f"{CURRENT}; {CANDIDATE} = upstream's new {PROD_MODEL}"
        self.say(f"  Ollama registry            {self._registry_server.url}  ({held})")

        def on_message(msg: dict) -> None:
            line = format_message(msg)
            self.slack_lines.append(line)
            self.say(line)

        self._slack = SlackSink(on_message=on_message).start()
        self.say(f"  Slack receiver             {self._slack.base_url}  (prints every message below)")

        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        s3.start()
        self._s3 = s3
        s3_url = f"http://127.0.0.1:{s3.get_host_and_port()[1]}"
        self._s3_url = s3_url
        import boto3
        from botocore.config import Config as BotoConfig

        client = boto3.client(
            "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="demo-access-key",
            aws_secret_access_key="demo-secret-key",
            config=BotoConfig(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}),
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        self.say(f"  S3 server (moto)           {s3_url}  (bucket {BUCKET})")

    def stop_services(self) -> None:
        for s in self._sims:
            with contextlib.suppress(Exception):
                s.stop()
        self._sims = []
        if self._registry_server is not None:
            with contextlib.suppress(Exception):
                self._registry_server.stop()
            self._registry_server = None
        if self._slack is not None:
            with contextlib.suppress(Exception):
                self._slack.stop()
            self._slack = None
        if self._s3 is not None:
            with contextlib.suppress(Exception):
                self._s3.stop()
            self._s3 = None

    # ------------------------------------------------------------ config
    def demo_files(self) -> dict[str, Path]:
        """Old logs to rotate and a small model store to back up, made fresh each run."""
        logs = self.state_dir / "served-logs"
        store = self.state_dir / "model-store"
        logs.mkdir(parents=True, exist_ok=True)
        store.mkdir(parents=True, exist_ok=True)
        old = time.time() - 45 * 86400
        for i in range(3):
            p = logs / f"requests-2026-10-{i + 1:02d}.jsonl"
            if not p.exists() and not (logs / (p.name + ".gz")).exists():
                p.write_text("".join(json.dumps({"i": j, "ttft_s": 0.2}) + "\n" for j in range(200)))
                os.utime(p, (old, old))
        server_log = logs / "ollama-server.log"
        if not server_log.exists():
            server_log.write_text(demo_server_log(time.time()))
        (store / "Modelfile").write_text("FROM llama3:8b\nPARAMETER temperature 0.2\n")
        (store / "pins.json").write_text(json.dumps({"llama3:8b": "sha256:" + "0" * 64}) + "\n")
        return {"logs": logs, "store": store, "server_log": server_log}

    def build_config(self) -> dict[str, Any]:
        files = self.demo_files()
        healthy, slow, staging = self._sims
        data: dict[str, Any] = {
            "state_dir": str(self.state_dir / "data"),
            "endpoints": [
                {
                    "name": HEALTHY,
                    "api": "ollama",
                    "url": healthy.url,
                    "model": healthy.behavior.model,
                    "timeout_s": 20.0,
                },
                {
                    "name": STAGING,
                    "api": "ollama",
                    "url": staging.url,
                    "model": staging.behavior.model,
                    "timeout_s": 20.0,
                    "staging": True,
                },
                {
                    "name": FAULTY,
                    "api": "openai",
                    "url": slow.url,
                    "model": slow.behavior.model,
                    "timeout_s": 20.0,
                },
            ],  # fmt: skip
            "health": {
                "ttft_alert_s": TTFT_ALERT_S,
                "disk_paths": [str(self.state_dir)],
                "probe_retries": 1,
                "probe_retry_delay_s": 0.5,
                "probe_max_tokens": 16,
            },
            "logs": {"dirs": [str(files["logs"])], "compress_after_days": 30, "quiet_seconds": 0},
            "alerts": {"slack_webhook_url_env": SLACK_ENV, "min_status": "alert"},
            "restart": {"dry_run": True, "command": ["systemctl", "restart", "{target}"]},
        }
        optional = {
            "benchmark": {
                "profile": "concurrent",
                "concurrency": 4,
                "repeats": 1,
                "warmup": 1,
                "max_tokens": 24,
            },
            "models": {
                "ollama_models_dir": str(self.state_dir / "ollama-models"),
                "staging_endpoint": STAGING,
                "approval": "manual",
                "approval_poll_s": 2.0,
            },
            "review": {
                "sources": [{"name": "ollama", "kind": "ollama", "paths": [str(files["server_log"])]}],
                "ollama_registry_url": self._registry_server.url,
            },
            "backup": {
                "bucket": BUCKET,
                "endpoint_url": self._s3_url,
                "region": "us-east-1",
                "addressing_style": "path",
                "access_key_id_env": S3_KEY_ENV,
                "secret_access_key_env": S3_SECRET_ENV,
                "sets": [{"name": "model-store", "paths": [str(files["store"])]}],
            },
        }
        from llm_upkeep.config import Config

        for key, section in optional.items():
            if key not in Config.model_fields:
                continue
            trial = dict(data, **{key: section})
            try:
                parse_config(trial, "demo")
            except ConfigError as exc:  # a section whose schema moved on: run without it, say so
                self.say(f"  (demo config: leaving [{key}] out: {exc})")
                continue
            data = trial
        parse_config(data, str(self.config_path))
        return data

    def write_config(self) -> None:
        import tomli_w

        data = self.build_config()
        tmp = self.config_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            tomli_w.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        parse_config(__import__("tomllib").loads(tmp.read_text()), str(tmp))
        os.replace(tmp, self.config_path)
        self.say(f"  config                     {self.config_path}")

    def pin_models(self) -> None:
        """`llm-upkeep models pin`: the current version is the pinned production one at start."""
        from llm_upkeep.config import load_config
        from llm_upkeep.models.pins import pin_models

        report = pin_models(load_config(self.config_path), endpoint=HEALTHY)
        if not report.ok:
            raise DemoError(f"cannot pin the demo's models: {report.problems[0].public()}")
        pinned = ", ".join(report.pinned[HEALTHY])
        self.say(f"  models.lock                {report.lock_file}  ({HEALTHY}: {pinned})")

    # ------------------------------------------------------------ Prefect
    def start_prefect_server(self, timeout_s: float = 180.0) -> None:
        if port_in_use(self.port):
            raise DemoError(
                f"port {self.port} is in use (another Prefect server or demo?): stop it or pass --port N"
            )
        (self.state_dir / "prefect").mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(self.port)]  # fmt: skip
        child = Child(
            "prefect-server", cmd, self.child_env(), self.logs_dir / "prefect-server.log", self.root
        )
        self.children.append(child)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive:
                raise DemoError(f"the Prefect server exited ({child.proc.returncode}):\n{child.tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise DemoError(f"the Prefect server did not answer within {timeout_s:.0f} s:\n{child.tail()}")

    def start_serve(self, names: list[str] | None = None, limit: int = 4) -> Child:
        cmd = [sys.executable, "-m", "llm_upkeep.cli", "serve", "--config", str(self.config_path),
               "--limit", str(limit)]  # fmt: skip
        for n in names or []:
            cmd += ["--name", n]
        child = Child("serve", cmd, self.child_env(), self.logs_dir / "serve.log", self.root)
        self.children.append(child)
        return child

    async def wait_deployments(self, names: list[str], serve: Child, timeout_s: float = 240.0) -> dict:
        from prefect import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        deadline = time.monotonic() + timeout_s
        async with get_client() as client:
            while True:
                if not serve.alive:
                    raise DemoError(f"`llm-upkeep serve` exited ({serve.proc.returncode}):\n{serve.tail()}")
                found = await client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
                if len({d.name for d in found}) >= len(names):
                    flows = {f.id: f.name for f in await client.read_flows()}
                    return {d.name: (d, flows.get(d.flow_id, "?")) for d in found}
                if time.monotonic() > deadline:
                    missing = sorted(set(names) - {d.name for d in found})
                    raise DemoError(
                        f"deployments not registered in {timeout_s:.0f} s: {missing}\n{serve.tail()}"
                    )
                await _asleep(1.0)

    async def run_all(self, deployments: dict, order: list[str]) -> None:
        """One run of each deployment, in the batches described at RUN_FIRST."""
        from prefect import get_client

        first = [n for n in order if n in RUN_FIRST]
        last = [n for n in order if n in RUN_LAST]
        chain = [[n] for n in RUN_CHAIN if n in order]
        rest = [n for n in order if n not in first and n not in last and n not in RUN_CHAIN]
        again = [n for n in order if n in RUN_AGAIN]
        batches = [(first, ""), (rest, ""), (last, ""), (again, " (again: compared with the baseline)")]
        async with get_client() as client:
            for batch, note in batches + [(b, "") for b in chain]:
                started: list[RunOutcome] = []
                for name in batch:
                    dep, flow_name = deployments[name]
                    outcome = RunOutcome(deployment=name, flow=flow_name, run_id=None)
                    self.outcomes.append(outcome)
                    params, missing = demo_parameters(name, dep.parameter_openapi_schema or {})
                    if missing:
                        outcome.state = "SKIPPED"
                        outcome.message = f"needs parameters {missing} the demo does not know"
                        self.say(f"  {name}: skipped ({outcome.message})")
                        continue
                    if name == "rollback-model" and not self._promoted:
                        outcome.state = "SKIPPED"
                        outcome.message = "nothing to roll back: evaluate-model promoted nothing in this demo"
                        self.say(f"  {name}: not run ({outcome.message})")
                        continue
                    run = await client.create_flow_run_from_deployment(dep.id, parameters=params)
                    outcome.run_id = str(run.id)
                    outcome.state = "SCHEDULED"
                    outcome.history_from = len(self.model_history())
                    started.append(outcome)
                    self.say(f"  {name}: started{note} ({self.ui_url}/runs/flow-run/{run.id})")
                await self._wait_runs(client, started)

    # ------------------------------------------------------------ what the model chain did
    def model_history(self) -> list[Any]:
        """Production's model switches, as the models core records them (state_dir/models/<endpoint>)."""
        from llm_upkeep.models.active import read_history

        return read_history(self.state_dir / "data" / "models" / HEALTHY)

    def model_result(self, o: RunOutcome) -> str:
        """One line on what evaluate-model or rollback-model changed, read from the switch history
        and the decision it recorded (nothing for the other flows)."""
        if o.deployment not in RUN_CHAIN or o.state != "COMPLETED":
            return ""
        switches = self.model_history()[o.history_from :]
        if o.deployment == "evaluate-model":
            promoted = next((r for r in switches if r.action == "promote" and r.ok), None)
            undone = next((r for r in switches if r.action == "auto-rollback"), None)
            if promoted is not None and undone is None:
                self._promoted = True
                return (f"promoted {promoted.to_version} on {HEALTHY} ({PROD_MODEL} now serves it, answering "
                        f"after {promoted.seconds or 0:.1f} s; {self.decision_note(o)})")  # fmt: skip
            if undone is not None:
                return f"the promotion failed its probe and was rolled back to {undone.to_version}"
            return f"not promoted ({self.decision_note(o)})"
        back = next((r for r in switches if r.action == "rollback"), None)
        if back is None:
            return "no switch recorded"
        from llm_upkeep.sim.ollama_store import store_digests

        # The backup tag a rollback copies back, by the version name it was pulled as.
        names = {"sha256:" + hx: n for n, hx in store_digests(self.ollama_store).items()
                 if ":upkeep-" not in n and n != PROD_MODEL}  # fmt: skip
        version = names.get(back.to_digest or "", back.to_version)
        return (f"rolled {HEALTHY} back to {version} (kept as {back.to_version}) in {back.seconds or 0:.1f} s"
                if back.ok else f"rollback to {back.to_version} did not answer")  # fmt: skip

    def decision_note(self, o: RunOutcome) -> str:
        from llm_upkeep.config import load_config
        from llm_upkeep.models.evaluate import load_decision

        try:
            d = load_decision(load_config(self.config_path), HEALTHY, o.run_id or "", CANDIDATE)
        except Exception:  # the line is a courtesy; the run's own state says whether it worked
            d = None
        if d is None:
            return "no decision recorded"
        note = d.note.split(" (")[0]  # the policy's reason without the run ids
        return f"{d.by} approval: {note}" if d.approved else f"{d.by}: {note}"

    async def _wait_runs(self, client, outcomes: list[RunOutcome]) -> None:
        from uuid import UUID

        t0 = time.monotonic()
        pending = list(outcomes)
        while pending:
            for o in list(pending):
                run = await client.read_flow_run(UUID(o.run_id))
                st = run.state
                if st is None:
                    continue
                o.state, o.state_name = st.type.value, st.name
                if st.is_final() or st.is_paused():
                    o.seconds = round(time.monotonic() - t0, 1)
                    o.message = (st.message or "")[:300]
                    pending.remove(o)
                    if st.is_paused():
                        self.say(f"  {o.deployment}: waiting for approval -> open {self.ui_url}/runs/flow-run/"
                                 f"{o.run_id} and press Resume")  # fmt: skip
                    else:
                        o.result = self.model_result(o)
                        self.say(f"  {o.deployment}: {st.name} after {o.seconds:.0f} s"
                                 + (f" ({o.message})" if o.state != "COMPLETED" and o.message else "")
                                 + (f": {o.result}" if o.result else ""))  # fmt: skip
            if pending and time.monotonic() - t0 > self.run_timeout_s:
                for o in pending:
                    o.message = f"still {o.state_name or o.state} after {self.run_timeout_s:.0f} s"
                    self.say(f"  {o.deployment}: {o.message}")
                return
            if pending:
                await _asleep(1.0)

    async def read_artifacts(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as client:
            arts = await client.read_latest_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(exists_=True))
            )
        self.artifacts = sorted(
            ({"key": a.key, "type": a.type, "description": a.description or ""} for a in arts),
            key=lambda a: a["key"],
        )

    # ------------------------------------------------------------ the guide
    def guide(self) -> str:
        u = self.ui_url
        lines = ["", "=" * 78, f"llm-upkeep demo: the Prefect UI is at {u}", "=" * 78, "What to look at:"]
        lines.append(f"  1. Deployments  {u}/deployments")
        lines.append("     every deployment of prefect.yaml, each with its schedule (cron and timezone);")
        lines.append("     scheduled-restart is listed but inactive until you enable it.")
        dh = next((o for o in self.outcomes if o.deployment == "daily-health" and o.run_id), None)
        if dh:
            lines.append(f"  2. The daily-health run  {u}/runs/flow-run/{dh.run_id}")
            lines.append("     open its Artifacts tab: the health report. The healthy server is ok; the")
            lines.append(
                f"     planted fault on {FAULTY} shows as a TTFT alert (> {TTFT_ALERT_S:g} s) with a dry-run restart."
            )
        if self.artifacts:
            lines.append(f"  3. Artifacts  {u}/artifacts  (the latest of each):")
            for a in self.artifacts:
                hint = "  <- benchmark comparison" if "bench" in a["key"] and "compar" in a["key"] else ""
                if a["key"].startswith("model-evaluation"):
                    hint = "  <- candidate vs production"
                lines.append(f"       {u}/artifacts/key/{a['key']}  [{a['type']}]{hint}")
        lines.append("  4. Slack: the lines starting with [slack] above are what the Slack receiver got.")
        chain = [o for o in self.outcomes if o.deployment in RUN_CHAIN and o.run_id]
        if chain:
            lines.append(
                "  5. The model chain (pull, checksums, staging benchmark, approval, promotion; rollback):"
            )
            for o in chain:
                lines.append(f"       {u}/runs/flow-run/{o.run_id}  {o.deployment}: "
                             + (o.result.split(" (")[0] if o.result else o.state_name))  # fmt: skip
        waiting = [o for o in self.outcomes if o.state == "PAUSED"]
        for o in waiting:
            lines.append(
                f"  *  {o.deployment} is waiting for approval: {u}/runs/flow-run/{o.run_id} -> Resume"
            )
        bad = [o for o in self.outcomes if not o.ok and o.state != "SKIPPED"]
        if bad:
            lines.append("Runs that did not complete: " + ", ".join(f"{o.deployment} ({o.state_name or o.state})"
                                                                   for o in bad))  # fmt: skip
        lines.append(f"Logs of the processes: {self.logs_dir}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {
            "ui_url": self.ui_url,
            "api_url": self.api_url,
            "state_dir": str(self.state_dir),
            "config": str(self.config_path),
            "runs": [o.__dict__ for o in self.outcomes],
            "artifacts": self.artifacts,
            "slack_messages": len(self.slack_lines),
            "pids": {c.name: c.proc.pid for c in self.children},
        }

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


def demo_server_log(now: float) -> str:
    """A week of an Ollama server log with a few planted errors, for the weekly review."""
    lines = []
    for h in range(0, 6 * 24, 3):
        t = datetime.fromtimestamp(now - (6 * 24 - h) * 3600, UTC)
        stamp = t.strftime("%Y/%m/%d - %H:%M:%S")
        lines.append(f'[GIN] {stamp} | 200 |  1.204s |  127.0.0.1 | POST     "/api/chat"')
        if h % 24 == 9:
            iso = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            lines.append(f'time={iso} level=ERROR source=server.go:812 msg="llama runner process has terminated" '
                         'error="CUDA error: out of memory"')  # fmt: skip
            lines.append(f'[GIN] {stamp} | 500 |  3.001s |  127.0.0.1 | POST     "/api/chat"')
    return "\n".join(lines) + "\n"


def demo_parameters(name: str, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The demo's parameters a flow takes, and required ones the demo cannot supply."""
    props = set((schema.get("properties") or {}).keys())
    params = {k: v for k, v in DEMO_PARAMETERS.get(name, {}).items() if k in props}
    missing = [r for r in schema.get("required") or [] if r not in params]
    return params, missing


async def _asleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


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
