"""An authenticated control plane: a real `prefect server start` with basic auth
(PREFECT_SERVER_API_AUTH_STRING), clients with PREFECT_API_AUTH_STRING.

Without the string every API call is refused (401), and `llm-upkeep deploy` says so without a
traceback; with it, `llm-upkeep deploy` registers prefect.yaml's deployments and
`llm-upkeep worker` runs one of them to completion. The string never shows up in the run's
logs or parameters, nor in what the worker printed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.demo_fixtures import free_port

ROOT = Path(__file__).resolve().parent.parent
AUTH = "upkeep:" + secrets.token_hex(16)
POOL = "auth-pool"

pytestmark = pytest.mark.prefect


def _base_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING", "LLM_UPKEEP_CONFIG"):
        env.pop(k, None)
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("prefect-auth")
    port = free_port()
    env = _base_env(d / "server-home")
    env["PREFECT_SERVER_API_AUTH_STRING"] = AUTH
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{d / 'prefect.db'}"
    log = open(d / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=d,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (d / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prefect server did not start:\n" + (d / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url, d
    finally:
        _stop(proc)
        log.close()


def client_env(url: str, d: Path, auth: str | None = AUTH) -> dict[str, str]:
    env = _base_env(d / "client-home")
    env["PREFECT_API_URL"] = url
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    env["PREFECT_LOGGING_TO_API_ENABLED"] = "true"  # as on a real host (conftest turns it off for the suite)
    if auth is not None:
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def api(url: str, method: str, path: str, body: dict | None = None, auth: str | None = AUTH) -> httpx.Response:
    """One API call, retried on 503 as Prefect's own client does: the server answers 503 for errors
    a client may retry (on this SQLite-backed test server, "database is locked" while a worker or
    `serve` writes at the same moment; seen in CI on create_flow_run)."""
    kw = {"auth": tuple(auth.split(":", 1))} if auth else {}
    for attempt in range(5):
        r = httpx.request(method, f"{url}{path}", json=body, timeout=30, **kw)
        if r.status_code != 503:
            return r
        time.sleep(0.5 * 2**attempt)
    return r


def deploy(url: str, d: Path, auth: str | None) -> tuple[int, dict | None, str]:
    p = subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "deploy", "--json", "--pool", POOL],
                       cwd="/", env=client_env(url, d, auth), capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = p.stdout.strip().splitlines()
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    return p.returncode, doc, p.stdout + p.stderr


def leaks(text: str) -> bool:
    secret = AUTH.split(":", 1)[1]
    return secret in text or base64.b64encode(AUTH.encode()).decode() in text


def test_unauthenticated_calls_are_refused(server):
    url, _d = server
    assert api(url, "POST", "/flows/filter", {}, auth=None).status_code == 401
    assert api(url, "POST", "/deployments/filter", {}, auth="upkeep:wrong").status_code == 401
    assert api(url, "POST", "/flows/filter", {}).status_code == 200
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # probes stay open


def test_deploy_without_the_string_says_so(server):
    url, d = server
    rc, doc, out = deploy(url, d, auth=None)
    assert rc == 1 and doc is not None and not doc["ok"], out[-3000:]
    assert "401 Unauthorized" in doc["error"] and "set PREFECT_API_AUTH_STRING" in doc["error"], doc
    assert "Traceback" not in out and not leaks(out)


def test_authenticated_deploy_and_worker_run_a_flow(server, tmp_path):
    url, d = server
    rc, doc, out = deploy(url, d, auth=AUTH)
    assert rc == 0 and doc["ok"], out[-4000:]
    assert not leaks(out)
    names = {x["name"] for x in doc["deployments"]}
    assert "gpu-sampling" in names

    cfg = tmp_path / "llm-upkeep.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[gpu]\nenabled = false\n')
    wlog = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "llm_upkeep.cli", "worker", "--pool", POOL, "--config", str(cfg)],
        env=client_env(url, d), stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        dep = api(url, "GET", "/deployments/name/gpu-sampling/gpu-sampling")
        assert dep.status_code == 200, dep.text
        run = api(url, "POST", f"/deployments/{dep.json()['id']}/create_flow_run", {})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        deadline = time.monotonic() + 300
        state = None
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            state = api(url, "GET", f"/flow_runs/{run_id}").json()["state"]
            if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(1)
        assert state and state["type"] == "COMPLETED", f"{state}\n{(tmp_path / 'worker.log').read_text()[-4000:]}"
        fr = api(url, "GET", f"/flow_runs/{run_id}").json()
        assert not leaks(json.dumps(fr["parameters"])) and not leaks(json.dumps(fr))
        logs: list = []
        deadline = time.monotonic() + 60  # the run's log handler ships its batches shortly after the end
        while not any("Finished in state" in x["message"] for x in logs) and time.monotonic() < deadline:
            time.sleep(1)
            flt = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
            logs = api(url, "POST", "/logs/filter", flt).json()
        assert logs, "the run reported its logs to the authenticated API"
        assert not any(leaks(x["message"]) for x in logs)
        # the zygote logs the run's exit once its process is reaped, which can be after the API
        # says Completed: stopping the worker first lost that line once (CI, a busy machine)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not re.search(
            r"warm start: run process \d+ exited", (tmp_path / "worker.log").read_text(errors="replace")
        ):
            time.sleep(0.5)
    finally:
        _stop(worker)
        wlog.close()
    wtext = (tmp_path / "worker.log").read_text(errors="replace")
    assert not leaks(wtext)
    # The run was forked from the worker's pre-imported process (llm_upkeep/warm_start), not cold.
    assert "warm start: ready" in wtext and re.search(r"warm start: run process \d+ exited 0", wtext), wtext[-3000:]
    assert "starting cold" not in wtext


def wait_completed(url: str, run_id: str, proc: subprocess.Popen, log: Path, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        state = api(url, "GET", f"/flow_runs/{run_id}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    return state


def test_authenticated_serve_runs_a_flow(server, tmp_path):
    """`llm-upkeep serve` (one host, no worker) against the same server: registers and runs."""
    url, d = server
    # The deploy test registered gpu-sampling on a work pool on this same server; start from no
    # deployment so that what is found below is what serve registered, whatever the test order.
    old = api(url, "GET", "/deployments/name/gpu-sampling/gpu-sampling")
    if old.status_code == 200:
        assert api(url, "DELETE", f"/deployments/{old.json()['id']}").status_code == 204
    cfg = tmp_path / "llm-upkeep.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[gpu]\nenabled = false\n')
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    serve = subprocess.Popen(
        [sys.executable, "-m", "llm_upkeep.cli", "serve", "--config", str(cfg), "--name", "gpu-sampling"],
        env=client_env(url, d), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        dep = None
        while time.monotonic() < deadline:  # serve registers the deployment without a work pool
            assert serve.poll() is None, log_path.read_text()[-3000:]
            r = api(url, "GET", "/deployments/name/gpu-sampling/gpu-sampling")
            if r.status_code == 200 and not r.json().get("work_pool_name"):
                dep = r.json()
                break
            time.sleep(1)
        assert dep is not None, log_path.read_text()[-3000:]
        assert dep["parameters"].get("config_path") == str(cfg.resolve())
        run = api(url, "POST", f"/deployments/{dep['id']}/create_flow_run", {})
        assert run.status_code == 201, run.text
        state = wait_completed(url, run.json()["id"], serve, log_path)
        assert state.get("type") == "COMPLETED", f"{state}\n{log_path.read_text()[-4000:]}"
    finally:
        _stop(serve)
        log.close()
    assert not leaks(log_path.read_text(errors="replace"))


def test_the_auth_string_is_masked_in_logs(monkeypatch, caplog):
    """Registered from the environment when redaction is installed: raw, and as a Basic header."""
    import logging

    from llm_upkeep.redact import install_log_redaction

    monkeypatch.setenv("PREFECT_API_AUTH_STRING", AUTH)
    install_log_redaction()
    b64 = base64.b64encode(AUTH.encode()).decode()
    log = logging.getLogger("llm_upkeep.test_auth")
    with caplog.at_level(logging.INFO, logger="llm_upkeep.test_auth"):
        log.info("client env PREFECT_API_AUTH_STRING=%s", AUTH)
        log.info("request headers {'authorization': 'Basic %s'}", b64)
    text = caplog.text
    assert "***" in text and not leaks(text), text
