"""The fleet end to end, with real components started here: PostgreSQL (Debian's package, initdb +
pg_ctl on loopback), `prefect server start` on it, `llm-upkeep deploy`, one central and three
`llm-upkeep worker --host` processes acting as three hosts (own state dir, log dir, backup source
and fake NVML readings each; a restart command that records which host ran it), S3 (moto) and a
Slack receiver. Flow runs are created through the Prefect API, as the scheduler creates them.

It shows: a restart for an endpoint on host B runs on B and nowhere else; each host's GPU
readings are stored under its own name; the fleet cost review counts all three hosts' energy;
host A's snapshots survive host B's prune; a restore drill on A restores A's files; a worker
killed mid-run leaves the other hosts' parts complete and the fleet report names the missing host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import tomli_w

from llm_upkeep import history
from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.retention import list_snapshots
from llm_upkeep.backup.snapshot import open_store
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from llm_upkeep.sim.slack_sink import SlackSink
from tests.backup_helpers import make_tree
from tests.pg_fixtures import Postgres, free_port, pg_bin

# One deadline for the whole story on a busy 2-core CI machine (each flow run is its own process).
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("gpu-a", "gpu-b", "gpu-c")
WATTS = {"gpu-a": 100, "gpu-b": 200, "gpu-c": 300}
PART_TIMEOUT_S = 120.0  # the central runs' deadline for a host part; C's killed part runs into it

# A stand-in `pynvml` for a worker's flow runs: the tests' fake NVML, one GPU whose energy counter
# grows with wall time at this host's power (read at each query), so two samples taken by two
# flow runs integrate to energy.
NVML_SHIM = """
import json, os, sys, time
from tests.fakes import pynvml as _fake
_spec = json.loads(os.environ["FAKE_NVML"])
_fake.configure(devices=[_fake.FakeDevice(uuid=_spec["uuid"], power_mw=_spec["watts"] * 1000)])
_read_energy = _fake.nvmlDeviceGetTotalEnergyConsumption
def _energy_now(handle):  # read when asked: a warm worker imports this once, long before its runs
    _fake._state.devices[0].energy_mj = int((time.time() - 1.7e9) * _spec["watts"] * 1000)
    return _read_energy(handle)
_fake.nvmlDeviceGetTotalEnergyConsumption = _energy_now
sys.modules[__name__] = _fake
"""

# The restart command of each machine: appends that machine's name and the endpoint restarted.
RECORDER = """
import sys
with open(sys.argv[1], "a") as f:
    f.write(sys.argv[2] + " " + sys.argv[3] + "\\n")
"""


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{url} not answering; log:\n{log.read_text(errors='replace')[-3000:]}")


def _popen(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    f = open(log, "ab")  # noqa: SIM115 - the child owns it until it exits
    return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=ROOT)  # fmt: skip


def _kill_tree(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """The process and every descendant (a worker and the flow-run processes it started)."""
    if p.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        procs = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
        for q in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                q.send_signal(sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(20)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, moto_s3):
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql package")
    base = tmp_path_factory.mktemp("fleet")
    os.chmod(base, 0o755)
    procs: list[subprocess.Popen] = []
    pg = Postgres(base)
    sims = {h: SimServer(SimBehavior(ttft_s=t, itl_s=0.005, tokens=8)).start()
            for h, t in (("gpu-a", 0.02), ("gpu-b", 1.2), ("gpu-c", 15.0))}  # fmt: skip
    slack = SlackSink().start()
    mp = pytest.MonkeyPatch()
    mp.setenv("E2E_AWS_KEY", "testing")  # the test reads the bucket too
    mp.setenv("E2E_AWS_SECRET", "testing")
    marks: dict[str, float] = {}
    t_start = time.monotonic()
    try:
        db = pg.start()
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = dict(os.environ)
        for k in [k for k in env if k.startswith("PREFECT_") or k.startswith("LLM_UPKEEP_")]:
            del env[k]
        shim = base / "nvml-shim"
        shim.mkdir()
        (shim / "pynvml.py").write_text(NVML_SHIM)
        recorder = base / "record_restart.py"
        recorder.write_text(RECORDER)
        env.update({
            "PREFECT_API_URL": api, "PREFECT_HOME": str(base / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "2",
            "PREFECT_LOGGING_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": f"{shim}:{ROOT}", "SLACK_TEST_WEBHOOK": slack.webhook_url,
            "LLM_UPKEEP_PROJECT_DIR": str(ROOT),
        })  # fmt: skip
        # No scheduler: the test creates every run through the API itself, as the scheduler would. The
        # per-host gpu-sampling deployments keep prefect.yaml's hourly schedule, so a running scheduler
        # adds a sample whenever the test crosses an hour boundary (3 GPU samples where it expects 2).
        server_env = dict(
            env, PREFECT_API_DATABASE_CONNECTION_URL=db, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false"
        )
        log = base / "server.log"
        procs.append(_popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], server_env, log))  # fmt: skip
        _wait_http(f"{api}/health", procs[-1], log, 180)
        marks["postgres+server"] = time.monotonic() - t_start

        bucket = moto_s3.new_bucket()
        restarts = base / "restarts.log"
        endpoints = [{"name": f"ep-{h[-1]}", "api": "openai", "url": sims[h].url, "model": "llama3:8b", "host": h,
                      "timeout_s": 40, "read_timeout_s": 30} for h in HOSTS]  # fmt: skip
        common = {
            "endpoints": endpoints,
            "health": {"ttft_alert_s": 0.6, "probe_retries": 0, "probe_max_tokens": 4},
            "restart": {"dry_run": False, "recover_timeout_s": 1, "max_per_day": 5},
            "alerts": {"slack_webhook_url_env": "SLACK_TEST_WEBHOOK", "min_status": "alert"},
            "cost": {"price_per_kwh": 0.3},
            "fleet": {"work_pool": "fleet-e2e", "part_timeout_s": PART_TIMEOUT_S,
                      "hosts": [{"name": h} for h in HOSTS]},
        }  # fmt: skip
        configs, srcs = {}, {}
        for name in ("central", *HOSTS):
            d = base / name
            (d / "logs").mkdir(parents=True)
            srcs[name] = make_tree(d / "src" / "store", n=6, seed=11)
            (srcs[name] / "configs" / f"only-{name}.toml").write_text(f"host = '{name}'\n")
            backup = BackupConfig(bucket=bucket, endpoint_url=moto_s3.endpoint_url, region="us-east-1",
                                  prefix="fleet", keep_snapshots=1, prune_wait_s=0, max_attempts=2,
                                  access_key_id_env="E2E_AWS_KEY", secret_access_key_env="E2E_AWS_SECRET",
                                  sets=[{"name": "store", "paths": [str(srcs[name])]}])  # fmt: skip
            cfg = dict(common, state_dir=str(d / "state"), logs={"dirs": [str(d / "logs")]},
                       backup=backup.model_dump(mode="json", exclude_none=True))  # fmt: skip
            # This machine's restart command names the machine (the config file is the host's own).
            cfg["restart"] = dict(common["restart"], command=[sys.executable, str(recorder), str(restarts), name,
                                                              "{target}"])  # fmt: skip
            configs[name] = d / "llm-upkeep.toml"
            configs[name].write_text(tomli_w.dumps(cfg))
        env.update({"E2E_AWS_KEY": "testing", "E2E_AWS_SECRET": "testing", "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"})  # fmt: skip

        t0 = time.monotonic()
        names = ["daily-health", "gpu-sampling", "cost-review", "monthly-backup", "restore-drill", "runbook"]
        dep = subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "deploy", "--json", "--config",
                              str(configs["central"]), *[a for n in names for a in ("--name", n)]],
                             env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
        assert dep.returncode == 0, (dep.stdout + dep.stderr)[-4000:]
        deployed = json.loads(dep.stdout.strip().splitlines()[-1])
        marks["deploy"] = time.monotonic() - t0

        workers = {}
        for name in ("central", *HOSTS):
            wenv = dict(env, PREFECT_HOME=str(base / name / "prefect-home"))
            if name != "central":
                wenv["FAKE_NVML"] = json.dumps({"uuid": f"GPU-{name}", "watts": WATTS[name]})
            where = ["--central"] if name == "central" else ["--host", name]
            workers[name] = _popen([sys.executable, "-m", "llm_upkeep.cli", "worker", *where, "--config",
                                    str(configs[name])], wenv, base / f"worker-{name}.log")  # fmt: skip
            procs.append(workers[name])
        yield {"api": api, "base": base, "configs": configs, "workers": workers, "restarts": restarts,
               "bucket": bucket, "srcs": srcs, "slack": slack, "deployed": deployed, "marks": marks,
               "backup": backup}  # fmt: skip
    finally:
        mp.undo()
        print(f"fleet e2e timings: {json.dumps({k: round(v, 1) for k, v in marks.items()})}", file=sys.stderr)
        for p in reversed(procs):
            _kill_tree(p, signal.SIGTERM)
            _kill_tree(p)
        pg.stop()
        slack.stop()
        for s in sims.values():
            s.stop()


# ---------------------------------------------------------------- talking to the Prefect API


def _client(api: str):
    from prefect.client.orchestration import PrefectClient

    return PrefectClient(api)


async def _create(api: str, runs: list[tuple[str, dict]]) -> list:
    """Flow runs of deployments 'flow/deployment', with parameters, as the scheduler creates them."""
    async with _client(api) as c:
        out = []
        for name, params in runs:
            d = await c.read_deployment_by_name(name)
            out.append((await c.create_flow_run_from_deployment(d.id, parameters=params)).id)
        return out


async def _wait(api: str, ids: list, timeout: float) -> list:
    async with _client(api) as c:
        t0 = time.monotonic()
        while True:
            runs = [await c.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in runs):
                return runs
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"runs not final after {timeout} s: {[r.state_name for r in runs]}")
            await asyncio.sleep(0.5)


async def _part(api: str, flow_run_id) -> dict | None:
    """The typed result a host run attached to itself (tasks/fleet.py)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    async with _client(api) as c:
        arts = await c.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            type=ArtifactFilterType(any_=["llm-upkeep-fleet-part"])))  # fmt: skip
    return arts[-1].data if arts else None


async def _children(api: str, parent_id) -> dict[str, object]:
    """Host parts a central run dispatched: deployment name -> flow run (one run per deployment)."""
    return {name: r for name, r in await _child_runs(api, parent_id)}


async def _child_runs(api: str, parent_id) -> list[tuple[str, object]]:
    """Every flow run a central run dispatched, oldest first, with its deployment's name."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    async with _client(api) as c:
        runs = await c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
        deps = {d.id: d.name for d in await c.read_deployments()}
    return sorted(((deps.get(r.deployment_id, "?"), r) for r in runs), key=lambda x: x[1].created)


async def _markdown(api: str, key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with _client(api) as c:
        arts = await c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return arts[-1].data if arts else ""


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------- the test


def test_fleet_end_to_end_on_postgresql(fleet):
    api = fleet["api"]
    t_test = time.monotonic()
    deployed = {d["name"]: d for d in fleet["deployed"]["deployments"]}
    assert deployed["daily-health"]["work_queue"] == "central"
    assert {f"daily-health-{h}" for h in HOSTS} | {f"gpu-sampling-{h}" for h in HOSTS} <= set(deployed)
    assert deployed["gpu-sampling-gpu-b"]["work_queue"] == "host-gpu-b"

    # 1. Per-host runs: two GPU samples on every host, two backups of B (keep 1), one of A.
    first = [(f"gpu-sampling/gpu-sampling-{h}", {}) for h in HOSTS]
    first += [("monthly-backup/monthly-backup-gpu-a", {}), ("monthly-backup/monthly-backup-gpu-b", {})]
    ids = run(_create(api, first))
    done = run(_wait(api, ids, 240))
    assert [r.state_name for r in done] == ["Completed"] * len(done)
    time.sleep(1.5)  # two samples of the energy counter some time apart
    second = [(f"gpu-sampling/gpu-sampling-{h}", {}) for h in HOSTS]
    second += [("monthly-backup/monthly-backup-gpu-b", {}), ("restore-drill/restore-drill-gpu-a", {})]
    ids2 = run(_create(api, second))
    done2 = run(_wait(api, ids2, 240))
    assert [r.state_name for r in done2] == ["Completed"] * len(done2)

    fleet["marks"]["per-host runs"] = time.monotonic() - t_test
    # Each host's GPU readings are stored under its own name, in its own history.
    for h in HOSTS:
        df = history.read_gpu_samples(fleet["base"] / h / "state")
        assert set(df["host"]) == {h} and len(df) == 2, (h, df[["host", "uuid"]])
        assert set(df["uuid"]) == {f"GPU-{h}"}
    assert history.read_gpu_samples(fleet["base"] / "central" / "state").empty

    # A's snapshot survives B's prune (keep_snapshots = 1 per host); B keeps only its newest.
    a_backup = run(_part(api, ids[3]))
    b_first, b_second = run(_part(api, ids[4])), run(_part(api, ids2[3]))
    assert a_backup["snapshot"].startswith("gpu-a/") and b_second["snapshot"].startswith("gpu-b/")
    store = open_store(fleet["backup"])
    assert [s.snapshot for s in list_snapshots(store, "gpu-a")] == [a_backup["snapshot"]]
    assert [s.snapshot for s in list_snapshots(store, "gpu-b")] == [b_second["snapshot"]]
    assert b_first["snapshot"] != b_second["snapshot"]
    # The drill on A restored A's latest snapshot and found it identical to A's own files.
    drill = run(_part(api, ids2[4]))
    assert drill["snapshot"] == a_backup["snapshot"] and drill["ok"]
    assert drill["matched_source"] == drill["restored"] > 0

    # 2. The fleet cost review (central) counts every host's energy, each measured on its host.
    month = time.strftime("%Y-%m", time.gmtime())
    (cost_id,) = run(_create(api, [("cost-review/cost-review", {"month": month})]))
    (cost,) = run(_wait(api, [cost_id], 240))
    assert cost.state_name == "Completed"
    fleet["marks"]["cost review"] = time.monotonic() - t_test
    parts = run(_children(api, cost_id))
    kwh = {}
    for h in HOSTS:
        part = run(_part(api, parts[f"cost-review-{h}"].id))
        assert part["host"] == h
        kwh[h] = part["kwh"]
    assert all(v > 0 for v in kwh.values()), kwh
    report = run(_markdown(api, "cost-review-report"))
    for h in HOSTS:
        assert f"| {h} | 0 |" in report, report  # a GPU row per host in the one fleet report

    # 3. The fleet daily health. The central run probes every endpoint while each host's part runs its
    # own steps without probing; then it sends the endpoints it found slow back to their hosts: B
    # re-probes ep-b (1.2 s), still slow, and restarts it, on B. C's endpoint answers in 15 s; C's
    # worker is killed while its re-check runs: A and B still finish, and the report names C as
    # missing and alerts.
    fleet["slack"].messages.clear()
    (dh_id,) = run(_create(api, [("daily-health/daily-health", {"chain_runbook": False})]))
    t0 = time.monotonic()

    def recheck_of(kids, h):
        return next((r for n, r in kids if n == f"daily-health-{h}" and r.parameters.get("endpoints")), None)

    while True:
        kids = run(_child_runs(api, dh_id))
        c = recheck_of(kids, "gpu-c")
        if c is not None and c.state_name == "Running":
            break
        assert time.monotonic() - t0 < 180, [(n, r.state_name, r.parameters) for n, r in kids]
        time.sleep(0.3)
    _kill_tree(fleet["workers"]["gpu-c"])
    (dh,) = run(_wait(api, [dh_id], 240 + PART_TIMEOUT_S))
    assert dh.state_name == "Completed"
    fleet["marks"]["daily health"] = time.monotonic() - t_test
    kids = run(_child_runs(api, dh_id))
    first = {n: r for n, r in kids if not r.parameters.get("endpoints")}
    assert set(first) == {f"daily-health-{h}" for h in HOSTS}, [(n, r.parameters) for n, r in kids]
    assert all(r.parameters["probe"] is False for r in first.values())  # probed once, centrally
    assert first["daily-health-gpu-a"].state_name == "Completed"
    assert first["daily-health-gpu-b"].state_name == "Completed"
    rb, rc = recheck_of(kids, "gpu-b"), recheck_of(kids, "gpu-c")
    assert recheck_of(kids, "gpu-a") is None  # A's endpoint was healthy: nothing went back to A
    assert rb.parameters["endpoints"] == ["ep-b"] and rb.parameters["host_checks"] is False
    assert rb.state_name == "Completed" and rc.state_name != "Completed"
    assert fleet["restarts"].read_text().splitlines() == ["gpu-b ep-b"]  # on B, and nowhere else
    b_part = run(_part(api, rb.id))
    assert [(a["target"], a["decision"]) for a in b_part["actions"]] == [("ep-b", "executed")]
    assert {c["target"] for c in b_part["checks"] if c["check"] == "ttft"} == {"ep-b"}  # re-probed on B
    report = run(_markdown(api, "daily-health-report"))
    rows: dict[str, list[str]] = {}
    for ln in report.splitlines():
        if ln.startswith("| gpu-"):
            rows.setdefault(ln.split("|")[1].strip(), []).append(ln)
    assert any("MISSING" in r and "re-check of ep-c" in r for r in rows["gpu-c"]), report
    assert [("ok" in r) for r in rows["gpu-a"]] == [True], report
    assert any("degraded" in r and "re-check of ep-b" in r for r in rows["gpu-b"]), report
    alerts = " ".join(json.dumps(m) for m in fleet["slack"].messages)
    assert "gpu-c" in alerts and "daily_health_recheck" in alerts, alerts[:2000]
    # Each server's /metrics is read once, on its host (its part relaxes that host's NVML rule with
    # it), never a second time by the central run: A's healthy endpoint has one such row, A's.
    table = json.loads(run(_markdown(api, "daily-health-checks")))
    assert [c["target"] for c in table if c["check"] == "server_metrics" and c["target"].endswith("ep-a")] == [
        "gpu-a/ep-a"
    ], [c for c in table if c["check"] == "server_metrics"]

    # 4. The central runbook (a dry run) for A's and B's endpoints dispatches one part to each of those
    # hosts: each part diagnoses only its own endpoints, on its own worker, and restarts nothing.
    restarts_before = fleet["restarts"].read_text().splitlines()
    params = {"endpoints": ["ep-a", "ep-b"], "wait_for_approval": False, "dry_run": True}
    (rb_id,) = run(_create(api, [("runbook/runbook", params)]))
    (rb,) = run(_wait(api, [rb_id], 240))
    assert rb.state_name == "Completed"
    fleet["marks"]["runbook"] = time.monotonic() - t_test
    kids = run(_children(api, rb_id))
    assert set(kids) == {"runbook-gpu-a", "runbook-gpu-b"}, set(kids)
    for h in ("gpu-a", "gpu-b"):
        kid = kids[f"runbook-{h}"]
        assert kid.state_name == "Completed" and kid.work_queue_name == f"host-{h}"
        assert str(kid.id) in (fleet["base"] / f"worker-{h}.log").read_text(errors="replace")
        part = run(_part(api, kid.id))
        assert {i["diagnosis"]["target"] for i in part["incidents"]} <= {f"ep-{h[-1]}"}, part["incidents"]
        fleet["marks"][f"runbook part {h}"] = kid.total_run_time.total_seconds()
    b_part = run(_part(api, kids["runbook-gpu-b"].id))
    assert any(i["diagnosis"]["symptom"] == "slow_ttft" and i["diagnosis"]["target"] == "ep-b"
               for i in b_part["incidents"]), b_part  # fmt: skip
    assert fleet["restarts"].read_text().splitlines() == restarts_before
