"""Fleet planning without Prefect: which endpoints and steps a daily-health run covers per scope,
and which deployments a fleet gets on which queue."""

from __future__ import annotations

import json

import pytest

from llm_upkeep.cli import main
from llm_upkeep.config import parse_config
from llm_upkeep.configbase import ConfigError
from llm_upkeep.deploy import load_deployments, project_dir, read_document, render_document
from llm_upkeep.fleet import (
    ALL_HOST_STEPS,
    PLACEMENTS,
    WHERE,
    central_metrics_endpoints,
    first_parts,
    fleet_deployment_specs,
    host_slug,
    placement_table,
    plan_rechecks,
    plan_scope,
    recheck_parts,
    worker_command,
)


def fleet_config(**fleet):
    data = {
        "endpoints": [
            {"name": "a1", "api": "ollama", "url": "http://10.0.0.1:11434", "model": "m", "host": "gpu-a"},
            {"name": "a2", "api": "openai", "url": "http://10.0.0.1:8000", "model": "m", "host": "gpu-a"},
            {"name": "b1", "api": "ollama", "url": "http://10.0.0.2:11434", "model": "m", "host": "gpu-b"},
        ],
        "logs": {"dirs": ["/var/log/ollama"]},
        "fleet": {
            "hosts": [{"name": "gpu-a", "labels": ["h100"]}, {"name": "gpu-b", "work_queue": "q-b"}],
            **fleet,
        },
    }
    return parse_config(data, "fleet.toml")


# ---------------------------------------------------------------- config


def test_defaults_are_one_host_with_every_step_local():
    cfg = parse_config({}, None)
    assert not cfg.fleet.enabled
    assert tuple(cfg.fleet.host_local_steps) == ALL_HOST_STEPS
    assert cfg.fleet.work_pool == "llm-upkeep"


def test_queue_defaults_to_host_name_and_can_be_set():
    cfg = fleet_config()
    assert cfg.fleet.host("gpu-a").queue == "host-gpu-a"
    assert cfg.fleet.host("gpu-b").queue == "q-b"


@pytest.mark.parametrize(
    "fleet, key",
    [
        ({"hosts": [{"name": "x"}, {"name": "x"}]}, "fleet"),
        ({"hosts": [{"name": "x", "work_queue": "central"}]}, "fleet"),
        ({"hosts": [{"name": "bad name"}]}, "fleet.hosts[0].name"),
        ({"host_local_steps": ["nvml"]}, "fleet.host_local_steps[0]"),
        ({"hosts": [{"name": "x", "queue": "q"}]}, "fleet.hosts[0].queue"),
    ],
)
def test_bad_fleet_config_names_the_key(fleet, key):
    with pytest.raises(ConfigError) as e:
        parse_config({"fleet": fleet}, "f.toml")
    assert e.value.key == key and e.value.file == "f.toml"


def test_unknown_host_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"no fleet host named 'gpu-z' \(known: gpu-a, gpu-b\)"):
        fleet_config().fleet.host("gpu-z")


# ---------------------------------------------------------------- one run's scope


def test_scope_all_is_todays_single_host_flow():
    p = plan_scope(fleet_config(), "all")
    assert [e.name for e in p.endpoints] == ["a1", "a2", "b1"]
    assert (p.gpu, p.disk, p.logs, p.restart, p.key_suffix) == (True, True, True, True, "")


def test_central_probes_everything_and_leaves_host_steps_to_hosts():
    p = plan_scope(fleet_config(), "central")
    assert [e.name for e in p.endpoints] == ["a1", "a2", "b1"]
    assert (p.gpu, p.disk, p.logs, p.restart) == (False, False, False, False)
    assert p.key_suffix == ""


def test_host_runs_its_local_steps_and_probes_only_its_endpoints_to_decide_restarts():
    p = plan_scope(fleet_config(), "host", "gpu-a")
    assert [e.name for e in p.endpoints] == ["a1", "a2"]
    assert (p.gpu, p.disk, p.logs, p.restart) == (True, True, True, True)
    assert p.key_suffix == "-host-gpu-a"
    assert p.describe() == "host gpu-a: 2 endpoint(s) probed; steps gpu, disk, logs, restart"


def test_steps_not_host_local_move_to_the_central_run():
    cfg = fleet_config(host_local_steps=["gpu", "logs"])
    central, host = plan_scope(cfg, "central"), plan_scope(cfg, "host", "gpu-b")
    assert (central.gpu, central.disk, central.logs, central.restart) == (False, True, False, True)
    assert (host.gpu, host.disk, host.logs, host.restart) == (True, False, True, False)
    assert host.endpoints == []  # no restart here, so nothing to probe locally


def test_a_host_part_sent_without_probes_keeps_its_own_steps_and_its_restarts():
    p = plan_scope(fleet_config(), "host", "gpu-a", probe=False)
    assert p.endpoints == []  # the central run probes; nothing is probed twice
    assert [e.name for e in p.owned] == ["a1", "a2"]  # a GPU memory alert here still restarts them
    assert (p.gpu, p.disk, p.logs, p.restart) == (True, True, True, True)


def test_a_re_check_probes_only_the_named_endpoints_and_skips_the_host_steps():
    p = plan_scope(fleet_config(), "host", "gpu-a", endpoints=["a2"], host_checks=False)
    assert [e.name for e in p.endpoints] == [e.name for e in p.owned] == ["a2"]
    assert (p.gpu, p.disk, p.logs, p.restart) == (False, False, False, True)


def test_endpoints_narrow_a_central_run_and_never_widen_a_host_part():
    central = plan_scope(fleet_config(), "central", endpoints=["b1", "a1"])
    assert [e.name for e in central.endpoints] == ["a1", "b1"] and central.owned == []  # restarts: hosts'
    with pytest.raises(ConfigError, match="'b1' runs on host 'gpu-b', not on 'gpu-a'") as e:
        plan_scope(fleet_config(), "host", "gpu-a", endpoints=["b1"])
    assert e.value.key == "endpoints"
    with pytest.raises(ConfigError, match="no endpoint named 'zz'"):
        plan_scope(fleet_config(), "all", endpoints=["zz"])
    # restarts not host-local: a host part owns nothing, whatever it is sent
    assert plan_scope(fleet_config(host_local_steps=["gpu"]), "host", "gpu-a", endpoints=["a1"]).owned == []


def _check(target, status):
    from llm_upkeep.checks import CheckResult

    return CheckResult(check="ttft", target=target, status=status, value=1.0, unit="s")


def test_what_the_central_run_found_failing_goes_back_to_each_endpoints_host():
    cfg = fleet_config()
    checks = [_check("b1", "alert"), _check("a1", "ok"), _check("a2", "error"), _check("gpu0", "alert")]
    assert plan_rechecks(cfg, checks, cfg.endpoints) == {"gpu-a": ["a2"], "gpu-b": ["b1"]}
    assert plan_rechecks(cfg, checks, cfg.endpoints[:1]) == {}  # only what this run probed
    assert plan_rechecks(cfg, [_check("a1", "warn")], cfg.endpoints) == {}  # a warning restarts nothing
    # restarts decided centrally, or one host: nothing goes back
    assert plan_rechecks(fleet_config(host_local_steps=["gpu"]), checks, cfg.endpoints) == {}
    one = parse_config({"endpoints": [{"name": "x", "api": "ollama", "url": "http://h:1", "model": "m"}]}, None)
    assert plan_rechecks(one, [_check("x", "alert")], one.endpoints) == {}


def _planned(cfg, params):
    """What a host part would cover, given the parameters the central run sends it."""
    kw = {k: params[k] for k in ("endpoints", "probe", "host_checks") if k in params}
    return plan_scope(cfg, params["scope"], params["host"], **kw)


def test_a_central_run_narrowed_to_some_endpoints_hands_each_host_only_its_share():
    cfg, base = fleet_config(), {"scope": "host", "allow_restart": True, "chain_runbook": True}
    whole = first_parts(cfg, base, None)
    assert whole == {h: {**base, "host": h, "probe": False} for h in ("gpu-a", "gpu-b")}  # no narrowing sent
    assert [e.name for e in _planned(cfg, whole["gpu-a"]).owned] == ["a1", "a2"]
    narrowed = first_parts(cfg, base, ["b1", "a2"])
    assert narrowed["gpu-a"]["endpoints"] == ["a2"] and narrowed["gpu-b"]["endpoints"] == ["b1"]
    only_b = first_parts(cfg, base, ["b1"])
    a, b = _planned(cfg, only_b["gpu-a"]), _planned(cfg, only_b["gpu-b"])
    assert (a.owned, a.endpoints, a.gpu, a.disk, a.logs) == ([], [], True, True, True)  # its own steps, no restart
    assert ([e.name for e in b.owned], b.endpoints) == (["b1"], [])


def test_a_re_check_part_probes_what_it_was_sent_back_and_nothing_else():
    cfg, base = fleet_config(), {"scope": "host", "allow_restart": True, "chain_runbook": False}
    parts = recheck_parts(base, {"gpu-a": ["a2"]})
    assert list(parts) == ["gpu-a"]
    p = _planned(cfg, parts["gpu-a"])
    assert [e.name for e in p.endpoints] == [e.name for e in p.owned] == ["a2"]
    assert (p.gpu, p.disk, p.logs) == (False, False, False)


@pytest.mark.parametrize(
    "scope, host, msg",
    [
        ("host", None, "needs a host name"),
        ("host", "gpu-z", "no fleet host named"),
        ("central", "gpu-a", "only used with scope 'host'"),
        ("everything", None, "unknown scope"),
    ],
)
def test_bad_scope_is_a_clear_error(scope, host, msg):
    with pytest.raises(ConfigError, match=msg):
        plan_scope(fleet_config(), scope, host)


def test_artifact_keys_stay_valid_for_any_host_name():
    assert host_slug("GPU_01.rack-A") == "gpu-01-rack-a"


# ---------------------------------------------------------------- deployments of a fleet

# Where each deployment of prefect.yaml runs on a fleet, written out here independently of
# PLACEMENTS, so a change to the model that moves a flow shows up as a failing test.
EXPECTED_MODE = {
    "daily-health": "coordinated",
    "scheduled-restart": "per-host",
    "weekly-benchmark": "central",
    "liveness": "central",
    "security-audit": "coordinated",
    "cost-review": "coordinated",
    "weekly-review": "coordinated",
    "gpu-sampling": "per-host",
    "monthly-backup": "per-host",
    "restore-drill": "per-host",
    "runbook": "coordinated",
    "evaluate-model": "forwarded",
    "rollback-model": "forwarded",
}


def specs():
    return load_deployments(project_dir())


@pytest.fixture(scope="module")
def real_params():
    """Parameter names of every flow in prefect.yaml, as `llm-upkeep deploy` reads them."""
    from llm_upkeep.deploy import flow_parameters, import_flow

    root = project_dir()
    return {s.name: set(flow_parameters(import_flow(s, root))) for s in specs()}


def test_every_deployment_of_prefect_yaml_declares_its_placement():
    assert {s.name for s in specs()} == set(PLACEMENTS) == set(EXPECTED_MODE)
    assert {n: p.mode for n, p in PLACEMENTS.items()} == EXPECTED_MODE
    for name, p in PLACEMENTS.items():
        assert p.steps and all(s.where in WHERE for s in p.steps), name
        if p.mode != "central":
            assert any(s.where != "central" for s in p.steps), name
            assert "host" in p.host_params, name


def test_two_hosts_place_every_deployment_of_prefect_yaml_as_the_model_says(real_params):
    cfg = fleet_config()
    out = {s.name: s for s in fleet_deployment_specs(specs(), cfg, real_params)}
    hosts = {"gpu-a": "host-gpu-a", "gpu-b": "q-b"}
    expected_names = set()
    for spec in specs():
        mode = EXPECTED_MODE[spec.name]
        copies = {h: out.get(f"{spec.name}-{h}") for h in hosts}
        central = out.get(spec.name)
        if mode == "central":
            assert central is not None and all(c is None for c in copies.values()), spec.name
            assert central.work_pool.work_queue_name == "central"
            assert central.parameters == spec.parameters and central.schedules == spec.schedules
            expected_names.add(spec.name)
            continue
        for h, queue in hosts.items():
            c = copies[h]
            assert c is not None, f"{spec.name}-{h} missing"
            assert (c.work_pool.name, c.work_pool.work_queue_name) == ("llm-upkeep", queue), c.name
            assert c.parameters["host"] == h and f"host:{h}" in c.tags, c.name
            if "scope" in PLACEMENTS[spec.name].host_params:
                assert c.parameters["scope"] == "host"
            expected_names.add(c.name)
        if mode == "per-host":
            assert central is None, spec.name
            for c in copies.values():  # the host copies run on prefect.yaml's own schedule
                assert c.schedules == spec.schedules, c.name
        else:
            assert central is not None and central.work_pool.work_queue_name == "central", spec.name
            assert central.schedules == spec.schedules
            assert central.parameters == {**spec.parameters, **PLACEMENTS[spec.name].central_params}
            for c in copies.values():  # dispatched by the central copy: never on a schedule or trigger
                assert c.schedules == [] and "triggers" not in c.to_yaml(), c.name
            expected_names.add(spec.name)
    assert set(out) == expected_names
    # The runbook's automation stays on the central copy, which dispatches to the hosts.
    assert out["runbook"].to_yaml()["triggers"][0]["name"] == "runbook-after-daily-health-failure"
    assert out["daily-health"].parameters == {"scope": "central"}
    assert out["daily-health-gpu-a"].parameters == {"scope": "host", "host": "gpu-a"}
    assert "h100" in out["daily-health-gpu-a"].tags
    assert out["scheduled-restart-gpu-b"].schedules[0].active is False  # inactive stays inactive


def test_a_step_kept_central_by_host_local_steps_keeps_its_flow_central(real_params):
    cfg = fleet_config(host_local_steps=["disk", "logs", "restart", "backup"])  # no "gpu"
    out = {s.name for s in fleet_deployment_specs(specs(), cfg, real_params)}
    assert "gpu-sampling" in out and "gpu-sampling-gpu-a" not in out
    assert "cost-review-gpu-a" not in out  # only its energy was host-local
    assert "weekly-review-gpu-a" in out  # its logs still are


def test_without_hosts_every_deployment_stays_as_written(real_params):
    cfg = parse_config({}, None)
    out = fleet_deployment_specs(specs(), cfg, real_params)
    assert [s.name for s in out] == [s.name for s in specs()]
    assert all(s.parameters == o.parameters for s, o in zip(specs(), out, strict=True))


@pytest.mark.parametrize("name, missing", [("daily-health", "scope"), ("gpu-sampling", "host"),
                                            ("rollback-model", "host")])  # fmt: skip
def test_flow_lacking_a_needed_parameter_is_refused_naming_deployment_and_parameter(real_params, name, missing):
    params = dict(real_params, **{name: real_params[name] - {missing}})
    with pytest.raises(ConfigError) as e:
        fleet_deployment_specs(specs(), fleet_config(), params)
    assert f"deployment {name!r}" in str(e.value) and f"no {missing!r} parameter" in str(e.value)


OLD_FLOW = """
from prefect import flow


@flow(name="gpu-sampling")
def gpu_sampling(config_path: str | None = None):
    return None
"""


def test_llm_upkeep_deploy_refuses_a_fleet_deployment_whose_flow_lacks_the_parameter(tmp_path, capsys):
    """The CLI path a user takes: the refusal comes before any server is contacted."""
    import shutil

    import tomli_w

    proj = tmp_path / "proj"
    shutil.copytree(project_dir() / "flows", proj / "flows")  # the other flows, as a checkout has them
    (proj / "legacy_flows").mkdir()
    (proj / "legacy_flows" / "old_sampling.py").write_text(OLD_FLOW)
    text = (project_dir() / "prefect.yaml").read_text()
    text = text.replace("flows/gpu_sampling.py:gpu_sampling", "legacy_flows/old_sampling.py:gpu_sampling")
    (proj / "prefect.yaml").write_text(text)
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(tomli_w.dumps({"fleet": {"hosts": [{"name": "gpu-a"}, {"name": "gpu-b"}]}}))
    rc = main(["deploy", "--config", str(cfg), "--project-dir", str(proj)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "deployment 'gpu-sampling'" in err and "no 'host' parameter" in err, err


def test_placement_table_names_every_step_once():
    rows = placement_table()
    assert {r["deployment"] for r in rows} == set(PLACEMENTS)
    assert {r["where"] for r in rows} == set(WHERE)


def test_endpoint_on_an_unlisted_host_is_refused():
    cfg = fleet_config()
    cfg.endpoints[2].host = "gpu-c"
    with pytest.raises(ConfigError, match="host 'gpu-c', which is not in") as e:
        fleet_deployment_specs(specs(), cfg, {})
    assert e.value.key == "endpoints[2].host"


def test_rendered_prefect_yaml_keeps_pull_steps_and_sets_the_pool():
    root = project_dir()
    doc = read_document(root)
    params = {name: {"scope", "host", "config_path"} for name in PLACEMENTS}
    out = render_document(doc, fleet_deployment_specs(specs(), fleet_config(), params), pool="other")
    assert out["pull"] == doc["pull"]
    assert "definitions" not in out  # anchors resolved into each deployment
    assert {d["work_pool"]["name"] for d in out["deployments"]} == {"other"}
    names = [d["name"] for d in out["deployments"]]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------- worker command


def test_worker_command_is_a_process_worker_on_one_queue():
    cmd = worker_command("llm-upkeep", "host-gpu-a", "llm-upkeep-gpu-a", limit=2)
    assert cmd[1:] == ["-m", "prefect", "worker", "start", "--pool", "llm-upkeep", "--type", "process",
                       "--name", "llm-upkeep-gpu-a", "--work-queue", "host-gpu-a", "--limit", "2"]  # fmt: skip
    warm = worker_command("llm-upkeep", "host-gpu-a", "llm-upkeep-gpu-a", limit=2, warm=True, state_dir="/s")
    assert warm[1:] == ["-m", "llm_upkeep.warm_start.worker", "--pool", "llm-upkeep", "--name", "llm-upkeep-gpu-a",
                        "--state-dir", "/s", "--work-queue", "host-gpu-a", "--limit", "2"]  # fmt: skip


def test_worker_cli_resolves_the_hosts_queue(tmp_path, monkeypatch, capsys):
    import tomli_w

    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({"fleet": {"work_pool": "gpus", "hosts": [{"name": "gpu-a"}]}}))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["worker", "--host", "gpu-a", "--config", str(cfg), "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["pool"], out["queue"], out["warm"]) == ("gpus", "host-gpu-a", True)
    assert main(["worker", "--host", "gpu-a", "--config", str(cfg), "--dry-run", "--cold"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["warm"] is False and out["command"][1:4] == ["-m", "prefect", "worker"]
    assert main(["worker", "--host", "gpu-z", "--config", str(cfg), "--dry-run"]) == 2
    assert "no fleet host named 'gpu-z'" in capsys.readouterr().err
    assert main(["worker", "--central", "--config", str(cfg), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["queue"] == "central"


def test_worker_without_api_url_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["worker", "--dry-run"]) == 2
    assert "set PREFECT_API_URL" in capsys.readouterr().err


def test_operations_doc_shows_where_every_step_of_every_flow_runs():
    doc = (project_dir() / "docs" / "operations.md").read_text()
    for r in placement_table():
        assert f"| {r['step']} | {r['where']} |" in doc, r
    for name in PLACEMENTS:
        assert f"| `{name}` | {PLACEMENTS[name].mode} |" in doc, name


def test_config_check_warns_when_a_part_deadline_is_shorter_than_its_verification(tmp_path, capsys):
    """A central run that stops waiting before a host part's re-probing window ends reports a host
    missing while it still works: `config check` says so (exit 0: a valid config), never silently."""
    import json

    from llm_upkeep import cli

    def check(extra: str) -> tuple[dict, str]:
        path = tmp_path / "fleet.toml"
        path.write_text(f'state_dir = "{tmp_path / "state"}"\n'
                        '[[fleet.hosts]]\nname = "gpu-a"\n' + extra)  # fmt: skip
        assert cli.main(["config", "check", "--config", str(path), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert cli.main(["config", "check", "--config", str(path)]) == 0
        return doc, capsys.readouterr().err

    doc, err = check("")  # defaults: 900 s against 120 s windows
    assert doc["warnings"] == [] and "warning" not in err
    one_host = tmp_path / "one.toml"  # no fleet: no central run waits for parts, nothing to warn of
    one_host.write_text(f'state_dir = "{tmp_path / "state"}"\n[runbook]\nverify_timeout_s = 1000\n')
    assert cli.main(["config", "check", "--config", str(one_host), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    doc, _ = check("[fleet]\npart_timeout_s = 120\n")  # the fleet test's deadline: equal is too short
    assert len(doc["warnings"]) == 2, doc["warnings"]
    doc, err = check("[runbook]\nverify_timeout_s = 1000\n")
    (w,) = doc["warnings"]
    assert "fleet.part_timeout_s (900 s)" in w and "runbook.verify_timeout_s (1000 s)" in w, w
    assert err.startswith("llm-upkeep: config warning: fleet.part_timeout_s") and "fleet.toml" in err, err
    doc, err = check("[restart]\nrecover_timeout_s = 900\n[runbook]\nverify_timeout_s = 901\n")
    assert len(doc["warnings"]) == 2 and any("restart.recover_timeout_s (900 s)" in w for w in doc["warnings"])


def test_central_run_reads_metrics_only_of_hosts_without_a_part_that_reads_them():
    """A host part reads its own servers' /metrics (it owns their restarts); the central run reads
    only the rest: a host whose part could not be created, or every endpoint when restarts (and with
    them the parts' endpoints) are central."""
    cfg = fleet_config()
    names = lambda eps: [e.name for e in eps]  # noqa: E731
    assert names(central_metrics_endpoints(cfg, cfg.endpoints, {"gpu-a", "gpu-b"})) == []
    assert names(central_metrics_endpoints(cfg, cfg.endpoints, {"gpu-a"})) == ["b1"]
    central_restarts = fleet_config(host_local_steps=["gpu", "disk", "logs"])
    assert names(central_metrics_endpoints(central_restarts, central_restarts.endpoints, {"gpu-a", "gpu-b"})) == [
        "a1", "a2", "b1"
    ]
    part = plan_scope(cfg, "host", "gpu-a", probe=False)
    assert names(part.owned) == ["a1", "a2"], "the part that skips them centrally does read them"
