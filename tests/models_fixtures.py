"""Pytest plugin for the model lifecycle: an Ollama lab on the store-backed simulator
(llm_upkeep.sim.ollama_store, shared with the demo), and a llama.cpp server run as a service
whose restart command is a real subprocess.

Why a service script (``python -m tests.models_service restart DIR``): a promotion restarts the
server through its configured command, like ``systemctl restart llama``: the old process is
stopped (SIGTERM, waited for), a new one started detached with ``--model`` on the active
symlink. The command returns once the new process is spawned; readiness is the caller's
health probe, exactly as in production.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_upkeep.models.store import parse_model_name, write_manifest, write_model
from llm_upkeep.sim.llm_server import SimBehavior
from llm_upkeep.sim.ollama_store import StoreSimServer, fake_weights, publish_model
from tests.models_service import service_start, service_stop

ALIAS = "chat:active"
CANDIDATE = "llama3:8b-v2"  # the lab's candidate: in the registry, not yet on the servers


@pytest.fixture
def models_slack(monkeypatch):
    """A Slack receiver the lab's config posts to (alerts.slack_webhook_url_env = MODELS_TEST_SLACK)."""
    from llm_upkeep.sim.slack_sink import SlackSink

    with SlackSink() as sink:
        monkeypatch.setenv("MODELS_TEST_SLACK", sink.webhook_url)
        yield sink


@dataclass
class OllamaLab:
    """Production and staging simulators sharing one store (one host), a registry, a config file."""

    tmp: Path
    store: Path
    registry: Path
    prod: StoreSimServer
    staging: StoreSimServer
    config_path: Path
    v1_digest: str  # manifest hex of the version active at the start (tag llama3:8b-v1)
    v2_digest: str  # manifest hex of the candidate in the registry (llama3:8b-v2)

    def write_config(self, extra: str = "") -> Path:
        (self.tmp / "tiny-suite.yaml").write_text(
            "name: tiny\nmax_tokens: 8\nprompts:\n"
            + "".join(f"  - id: p{i}\n    prompt: item {i}\n    checks: [{{type: contains, value: fox}}]\n"
                      for i in range(4))
        )  # fmt: skip
        self.config_path.write_text(
            f'state_dir = "{self.tmp / "state"}"\n'
            f'[[endpoints]]\nname = "prod"\napi = "ollama"\nurl = "{self.prod.url}"\nmodel = "{ALIAS}"\n'
            "timeout_s = 10.0\n"
            f'[[endpoints]]\nname = "staging"\napi = "ollama"\nurl = "{self.staging.url}"\n'
            'model = "llama3:8b-v1"\nstaging = true\ntimeout_s = 10.0\n'
            '[benchmark]\nrepeats = 3\nwarmup = 1\nmax_tokens = 8\nsuite = "tiny-suite.yaml"\n'
            '[alerts]\nslack_webhook_url_env = "MODELS_TEST_SLACK"\n'
            f'[models]\nollama_models_dir = "{self.store}"\nprobe_timeout_s = 3.0\nprobe_interval_s = 0.1\n'
            "approval_poll_s = 1.0\n" + extra
        )
        return self.config_path


@pytest.fixture
def ollama_lab(tmp_path) -> Iterator[OllamaLab]:
    store, registry = tmp_path / "ollama", tmp_path / "registry"
    tmpl = [("application/vnd.ollama.image.template", b"{{ .Prompt }}")]
    v1 = write_model(store, "llama3:8b-v1", fake_weights(1), extra_layers=tmpl)
    write_manifest(store, ALIAS, v1.path.read_bytes())
    v2 = publish_model(registry, "llama3:8b-v2", fake_weights(2))
    h1, h2 = v1.digest.split(":")[1], v2.digest.split(":")[1]
    servers = []

    def sim(model: str, **kw) -> StoreSimServer:
        b = SimBehavior(model=model, digest=h1, models=["llama3:8b-v1"] if model != "llama3:8b-v1" else [],
                        digests={"llama3:8b-v1": h1}, registry={"llama3:8b-v2": h2}, ttft_s=0.02, itl_s=0.002,
                        tokens=8, pull_duration_s=0.05, **kw)  # fmt: skip
        s = StoreSimServer(b, store, registry).start()
        servers.append(s)
        return s

    try:
        lab = OllamaLab(tmp_path, store, registry, sim(ALIAS), sim("llama3:8b-v1"), tmp_path / "llm-upkeep.toml",
                        h1, h2)  # fmt: skip
        lab.write_config()
        yield lab
    finally:
        for s in servers:
            s.stop()


# ---------------------------------------------------------------- llama.cpp as a service


class LlamaService:
    """The handle a test holds: the state dir, the URL, the restart command for the config."""

    def __init__(self, d: Path, model: Path, port: int, alias: str = "tiny"):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        (d / "service.json").write_text(json.dumps({"model": str(model), "port": port, "alias": alias}))
        self.port = port
        self.alias = alias

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def restart_command(self) -> list[str]:
        return [sys.executable, "-m", "tests.models_service", "restart", str(self.dir)]

    def start(self) -> LlamaService:
        service_start(self.dir)
        return self

    def stop(self) -> None:
        service_stop(self.dir)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as c:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(self.url + "/v1/models").status_code == 200:
                        return
                time.sleep(0.05)
        raise TimeoutError(f"llama.cpp service not ready:\n{(self.dir / 'server.log').read_text()[-3000:]}")


# ---------------------------------------------------------------- approval through the Prefect API


class Approver(threading.Thread):
    """Waits for the evaluate-model run to pause, then answers through the Prefect API."""

    def __init__(self, approve: bool, note: str, before=None):
        super().__init__(daemon=True)
        self.answer = {"approve": approve, "note": note}
        self.before = before  # called while the run waits, just before the answer (e.g. to tamper)
        self.flow_run_id = None
        self.description = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from prefect.flow_runs import resume_flow_run

        try:
            flt = FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            )
            with get_client(sync_client=True) as c:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    runs = [r for r in c.read_flow_runs(flow_run_filter=flt)]
                    if runs:
                        run = runs[0]
                        self.flow_run_id = run.id
                        keyset = run.state.state_details.run_input_keyset
                        assert keyset, "the pause must ask for input (the UI form)"
                        try:  # the form's schema and text are saved just after the pause
                            c.read_flow_run_input(run.id, keyset["schema"])
                            self.description = c.read_flow_run_input(run.id, keyset["description"])
                        except Exception:
                            time.sleep(0.2)
                            continue
                        if self.before is not None:
                            self.before()
                        resume_flow_run(run.id, run_input=self.answer)
                        return
                    time.sleep(0.2)
                raise TimeoutError("the flow never paused for approval")
        except BaseException as exc:  # surfaced by the test
            self.error = exc


__all__ = [
    "ALIAS",
    "Approver",
    "CANDIDATE",
    "LlamaService",
    "OllamaLab",
    "StoreSimServer",
    "fake_weights",
    "parse_model_name",
]
