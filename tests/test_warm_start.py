"""Warm start of flow runs (llm_upkeep/warm_start): the real zygote and launcher processes, with a
stand-in engine module that reports where it ran. Prefect's own runs through the warm worker are
covered by the fleet end-to-end test and the authenticated worker test (both start
`llm-upkeep worker`, warm by default).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llm_upkeep.warm_start.wire import ENGINE_ENV, SOCKET_ENV
from llm_upkeep.warm_start.worker import LAUNCHER
from llm_upkeep.warm_start.zygote import READY_LINE
from tests.ca_bundles import run_tls_probe

ROOT = Path(__file__).resolve().parent.parent
ENGINE = "tests.fakes.warm_engine"


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARM_TEST_", "LLM_UPKEEP_WARM"))}
    env.update({"PYTHONPATH": str(ROOT), ENGINE_ENV: ENGINE, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    d = tmp_path_factory.mktemp("warm")
    os.chmod(d, 0o700)
    sock = str(d / "z.sock")
    log = d / "zygote.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_upkeep.warm_start.zygote", "--socket", sock, "--preload", ""],
            env=_env(), stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while READY_LINE not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    assert READY_LINE in log.read_text(), log.read_text()
    yield sock, proc, log
    proc.terminate()
    proc.wait(10)
    assert not os.path.exists(sock), "the zygote removes its socket when it leaves"


def launch(sock: str | None, cwd: Path, *args: str, **env) -> subprocess.Popen:
    e = _env(**env)
    if sock:
        e[SOCKET_ENV] = sock
    return subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER), *args], env=e, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def start_sleeping_run(sock: str, cwd: Path) -> tuple[subprocess.Popen, int]:
    """A warm run that sleeps for a minute: its launcher and the run's own pid."""
    pidfile = cwd / "pid"
    p = launch(sock, cwd, WARM_TEST_SLEEP="60", WARM_TEST_PIDFILE=str(pidfile))
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return p, int(pidfile.read_text())


def test_a_run_forks_from_the_zygote_with_its_own_env_cwd_argv_streams_and_exit_code(zygote, tmp_path):
    sock, proc, log = zygote
    p = launch(sock, tmp_path, "run-id-123", WARM_TEST_EXIT="3", WARM_TEST_FOO="bar")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    info = json.loads(out.splitlines()[0])
    assert info["ppid"] == proc.pid, "forked by the zygote, not started by the launcher"
    assert info["prefect_preloaded"], "Prefect was imported once, in the zygote"
    assert info["nvml_preloaded"], "and the NVML bindings the GPU steps import"
    assert info["api_tls_shared"], "the run's Prefect clients share one TLS context"
    assert info["version_check_shared"], "and so does the events client's server-version check"
    assert info["tls_built_in_run"] == {"api": 0, "own": 0}, "both verifying contexts were built before the fork"
    assert info["flow_run_model_complete"] is True, "Prefect's deferred client schemas were built before the fork"
    assert info["cwd"] == str(tmp_path) and info["argv"] == ["run-id-123"]
    assert info["env"] == {"WARM_TEST_EXIT": "3", "WARM_TEST_FOO": "bar"}
    assert "to stderr" in err and "starting cold" not in err
    deadline = time.monotonic() + 10
    while f"run process {info['pid']} exited 3" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"run process {info['pid']} exited 3" in log.read_text()


def test_two_runs_are_two_processes_and_do_not_share_state(zygote, tmp_path):
    sock, proc, _ = zygote
    runs = [launch(sock, tmp_path, WARM_TEST_SLEEP="0.5", WARM_TEST_N=str(i)) for i in range(2)]
    infos = [json.loads(p.communicate(timeout=60)[0].splitlines()[0]) for p in runs]
    assert infos[0]["pid"] != infos[1]["pid"]
    assert [i["env"]["WARM_TEST_N"] for i in infos] == ["0", "1"]
    assert all(p.returncode == 0 for p in runs)


def test_sigterm_to_the_launcher_reaches_the_run_and_its_status_comes_back(zygote, tmp_path):
    p, child = start_sleeping_run(zygote[0], tmp_path)
    p.send_signal(signal.SIGTERM)  # what Prefect's worker sends to cancel or stop a run
    p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_a_killed_launcher_takes_the_run_with_it(zygote, tmp_path):
    p, child = start_sleeping_run(zygote[0], tmp_path)
    p.kill()  # SIGKILL after Prefect's grace period: nothing can be forwarded
    p.wait(10)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(child), "the run outlived the process Prefect killed"


def test_without_a_zygote_the_run_starts_cold_the_ordinary_way(tmp_path):
    p = launch(str(tmp_path / "nothing.sock"), tmp_path, "rid", WARM_TEST_EXIT="4")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 4
    info = json.loads(out.splitlines()[0])
    assert info["pid"] == p.pid, "the launcher replaced itself with the engine (exec)"
    assert not info["prefect_preloaded"] and info["argv"] == ["rid"]
    assert "starting cold (no warm starter at" in err
    p = launch(None, tmp_path, WARM_TEST_EXIT="0")  # not under a warm worker at all: silent
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "starting cold" not in err


def test_other_prefect_settings_in_the_runs_env_start_it_cold(zygote, tmp_path):
    sock, proc, _ = zygote
    p = launch(sock, tmp_path, PREFECT_API_URL="http://127.0.0.1:1/api", WARM_TEST_EXIT="0")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    info = json.loads(out.splitlines()[0])
    assert info["ppid"] != proc.pid and not info["prefect_preloaded"]
    assert "Prefect settings in the run's environment differ" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the launcher as another user")
def test_another_user_cannot_use_the_zygote(zygote, tmp_path):
    sock, proc, _ = zygote
    os.chmod(tmp_path, 0o777)
    e = _env(**{SOCKET_ENV: sock, "WARM_TEST_EXIT": "0"})
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-I",
                        "-S", str(LAUNCHER)], env=e, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "starting cold (no warm starter" in p.stderr, p.stderr
    if p.stdout.strip():  # nobody may not read the checkout; if it ran, it ran on its own
        assert json.loads(p.stdout.splitlines()[0])["ppid"] != proc.pid


TLS_PROBE = r"""
import json, sys, time
import certifi
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings
from llm_upkeep.warm_start.tls import share_api_tls_contexts

def ctx(c):
    return c._client._transport._pool._ssl_context

def facts(c):
    x = ctx(c)
    return {"id": id(x), "verify": int(x.verify_mode), "hostname": x.check_hostname,
            "cas": x.cert_store_stats()["x509_ca"]}

url = "https://127.0.0.1:1/api"
t = time.process_time(); before = [PrefectClient(url) for _ in range(5)]; cold_cpu = time.process_time() - t
shim = share_api_tls_contexts()
assert share_api_tls_contexts() is shim  # idempotent
t = time.process_time(); after = [PrefectClient(url) for _ in range(5)] + [SyncPrefectClient(url)]; warm_cpu = time.process_time() - t
with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
    insecure = facts(PrefectClient(url))
verifying_again = facts(PrefectClient(url))
with temporary_settings({PREFECT_API_SSL_CERT_FILE: sys.argv[1]}):
    own_bundle = facts(PrefectClient(url))
    own_bundle_again = facts(PrefectClient(url))
    with open(sys.argv[1], "a") as f:  # the bundle rotated: a second CA appended
        f.write(sys.argv[2])
    rotated = facts(PrefectClient(url))
import prefect._internal.version_checking as version_checking
print(json.dumps({"before": [facts(c) for c in before], "after": [facts(c) for c in after], "insecure": insecure,
                  "verifying_again": verifying_again, "own_bundle": own_bundle, "built": shim.built,
                  "own_bundle_again": own_bundle_again, "rotated": rotated,
                  "version_check_shared": version_checking.ssl is shim,
                  "cold_cpu": cold_cpu, "warm_cpu": warm_cpu, "certifi_cas": facts(before[0])["cas"]}))
"""


def test_a_runs_prefect_clients_share_one_verifying_tls_context_and_never_an_insecure_one(tmp_path):
    env = {k: v for k, v in _env().items() if not k.startswith("PREFECT_API_")}
    r = run_tls_probe(TLS_PROBE, tmp_path, env, ROOT)
    assert len({f["id"] for f in r["before"]}) == 5, "without it, Prefect builds one context per client"
    assert len({f["id"] for f in r["after"]}) == 1, "with it, one for all, async and sync clients alike"
    shared = r["after"][0]
    assert (shared["verify"], shared["hostname"], shared["cas"]) == (2, True, r["certifi_cas"])  # CERT_REQUIRED
    assert (r["insecure"]["verify"], r["insecure"]["hostname"]) == (0, False)  # asked for: CERT_NONE
    assert r["verifying_again"] == shared, "a verifying client never gets the insecure context"
    assert r["own_bundle"]["id"] != shared["id"] and r["own_bundle"]["cas"] == 1 and r["own_bundle"]["verify"] == 2
    assert r["own_bundle_again"] == r["own_bundle"], "the same bundle, unchanged: the same context"
    assert r["rotated"]["id"] != r["own_bundle"]["id"] and r["rotated"]["cas"] == 2, "a rotated bundle is re-read"
    assert r["version_check_shared"], "Prefect's server-version check gets the same shared contexts"
    assert r["built"] == 4  # certifi's, the insecure one, the run's own bundle, and that bundle rotated
    # the CPU it saves, measured in the same process: five clients' contexts against one
    assert r["warm_cpu"] < r["cold_cpu"] / 2, r


def test_the_warm_workers_own_api_clients_share_one_tls_context():
    """The long-lived worker opens Prefect clients for every run it submits: making its class makes
    them share one context per CA bundle version, as the runs' do (a fresh interpreter, as a worker)."""
    script = (
        "from llm_upkeep.warm_start.worker import make_worker_class\n"
        "import prefect.client.orchestration as o\n"
        "ctx = lambda: o.PrefectClient('https://127.0.0.1:1/api')._client._transport._pool._ssl_context\n"
        "before = [ctx() for _ in range(3)]\n"  # kept alive, so no id is reused
        "make_worker_class()\n"
        "after = [ctx() for _ in range(3)]\n"
        "print(len({id(c) for c in before}), len({id(c) for c in after}), type(o.ssl).__name__)\n"
    )  # fmt: skip
    env = {k: v for k, v in _env().items() if not k.startswith("PREFECT_API_")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["3", "1", "_SharedContexts"], out.stdout
