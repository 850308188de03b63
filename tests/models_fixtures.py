"""Pytest plugin for the model lifecycle: an Ollama simulator backed by a real store on disk, and
a llama.cpp server run as a service whose restart command is a real subprocess.

Why a store-backed simulator: the simulator speaks Ollama's API but keeps models in memory;
verification, pins and rollbacks read the store on disk. This subclass makes /api/pull copy
real blobs (real sha256 names) and a manifest from a "registry" directory into the store,
/api/copy copy a manifest, /api/delete remove one, so API and disk agree as they do in Ollama.
A model can be marked broken (by manifest digest): generating with it fails with Ollama's 500.

Why a service script (``python -m tests.models_service restart DIR``): a promotion restarts the
server through its configured command, like ``systemctl restart llama``: the old process is
stopped (SIGTERM, waited for), a new one started detached with ``--model`` on the active
symlink. The command returns once the new process is spawned; readiness is the caller's
health probe, exactly as in production.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_upkeep.models.store import list_models, manifest_path, parse_model_name, write_manifest, write_model
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.models_service import service_start, service_stop

ALIAS = "chat:active"


def fake_weights(seed: int, n: int = 200_000) -> bytes:
    out = bytearray()
    block = hashlib.sha256(f"weights{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return b"GGUF" + bytes(out[: n - 4])


class StoreSimServer(SimServer):
    """SimServer whose pulls, copies and deletes change a real Ollama store on disk."""

    def __init__(self, behavior: SimBehavior, store: Path, registry_dir: Path, **kw):
        super().__init__(behavior, **kw)
        self.store = Path(store)
        self.registry_dir = Path(registry_dir)
        self.broken: set[str] = set()  # manifest hex digests whose generation fails
        self.copy_failures = 0  # the next N /api/copy calls fail with a 500 (a transient fault)

    def _manifest_bytes(self, digest_hex: str) -> tuple[bytes, Path] | None:
        for root in (self.store, self.registry_dir):
            for n in list_models(root):
                p = manifest_path(root, n)
                data = p.read_bytes()
                if hashlib.sha256(data).hexdigest() == digest_hex:
                    return data, root
        return None

    def _install(self, name: str, digest: str) -> None:
        found = self._manifest_bytes(digest)
        if found is not None:
            data, root = found
            if root == self.registry_dir:  # a pull: download every blob it names
                obj = json.loads(data)
                for e in [obj["config"], *obj["layers"]]:
                    hx = e["digest"].split(":", 1)[1]
                    dst = self.store / "blobs" / f"sha256-{hx}"
                    if not dst.exists():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        tmp = dst.with_name(dst.name + ".partial")
                        tmp.write_bytes((root / "blobs" / f"sha256-{hx}").read_bytes())
                        os.replace(tmp, dst)
            write_manifest(self.store, name, data)
        super()._install(name, digest)

    async def _ollama_copy(self, req, writer) -> bool:
        if self.copy_failures > 0:
            self.copy_failures -= 1
            return await self._json(
                writer, 500, {"error": "simulated: write manifest: no space left on device"}
            )
        return await super()._ollama_copy(req, writer)

    async def _ollama_delete(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        keep = await super()._ollama_delete(req, writer)
        if name and not self.behavior.has_model(name):
            with contextlib.suppress(FileNotFoundError, ValueError):
                manifest_path(self.store, name).unlink()
        return keep

    async def _fault_response(self, dialect: str, writer):
        if self.behavior.digest in self.broken:
            body = {"error": "llama runner process has terminated: error loading model: invalid tensor data"}
            return await self._json(writer, 500, body)
        return await super()._fault_response(dialect, writer)


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
    v2 = write_model(registry, "llama3:8b-v2", fake_weights(2), extra_layers=tmpl)
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

    def __init__(self, approve: bool, note: str):
        super().__init__(daemon=True)
        self.answer = {"approve": approve, "note": note}
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
                        resume_flow_run(run.id, run_input=self.answer)
                        return
                    time.sleep(0.2)
                raise TimeoutError("the flow never paused for approval")
        except BaseException as exc:  # surfaced by the test
            self.error = exc


__all__ = [
    "ALIAS",
    "Approver",
    "LlamaService",
    "OllamaLab",
    "StoreSimServer",
    "fake_weights",
    "parse_model_name",
]
