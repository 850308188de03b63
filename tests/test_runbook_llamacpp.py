"""The runbook against the real llama.cpp server: a killed server is diagnosed as 'connection
refused', its log is attached, the configured restart command really starts the server again,
and the re-probe passes. The random-weights model's answers are diagnosed as gibberish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from llm_upkeep.runbook.engine import run_runbook
from tests.runbook_fixtures import runbook_config

# Starts the server detached (its own session, like a service manager would) and returns at once.
_SPAWN = (
    "import subprocess, sys\n"
    "pidfile, log = sys.argv[1], sys.argv[2]\n"
    "p = subprocess.Popen(sys.argv[3:], stdout=open(log, 'ab'), stderr=subprocess.STDOUT,\n"
    "                     stdin=subprocess.DEVNULL, start_new_session=True)\n"
    "open(pidfile, 'w').write(str(p.pid))\n"
)


@pytest.fixture
def respawned(tmp_path):
    """pidfile path; whatever the restart command started is killed (its whole group) at teardown."""
    pidfile = tmp_path / "restarted.pid"
    yield pidfile
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def test_killed_llamacpp_server_is_restarted_by_the_runbook(tmp_path, llamacpp_server, respawned):
    server = llamacpp_server
    log = Path(server.log_path)
    restart_cmd = [sys.executable, "-c", _SPAWN, str(respawned), str(log), *server.command()]
    cfg = runbook_config(
        tmp_path, [server.endpoint("llamacpp", timeout_s=20.0, read_timeout_s=10.0, connect_timeout_s=2.0)],
        restart={"command": restart_cmd, "timeout_s": 20},
        runbook={"verify_timeout_s": 60.0, "verify_interval_s": 0.5, "canary_prompt": "", "log_tail_lines": 20,
                 "logs": [{"name": "llama.cpp", "kind": "server", "path": str(log)}]},
    )  # fmt: skip
    server.kill()
    assert not server.running

    res = asyncio.run(run_runbook(cfg))
    inc = next(i for i in res.incidents if i.symptom == "connection_refused")
    by = {r.action: r for r in inc.results}
    assert by["collect_logs"].status == "done" and by["collect_logs"].data["logs"]["llama.cpp"]
    assert by["restart"].status == "done"
    assert by["propose_restart_limit"].status == "proposed"
    assert inc.outcome == "recovered", inc.summary
    assert respawned.exists()
    # The server the runbook started answers for real.
    import httpx

    r = httpx.get(server.url + "/v1/models", timeout=5.0, trust_env=False)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "tiny"


def test_random_weights_answers_from_the_real_server_are_diagnosed_as_gibberish(tmp_path, llamacpp_server):
    cfg = runbook_config(tmp_path, [llamacpp_server.endpoint("llamacpp", timeout_s=20.0)])
    res = asyncio.run(run_runbook(cfg))
    inc = next(i for i in res.incidents if i.symptom == "gibberish")
    assert inc.diagnosis.cause == "Corrupted model file"
    assert any("word_salad" in e for e in inc.diagnosis.evidence)
    assert inc.outcome == "escalated" and "re-download" in inc.summary
