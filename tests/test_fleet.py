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
    fleet_deployment_specs,
    host_slug,
    plan_scope,
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

DAILY = {"config_path", "allow_restart", "scope", "host"}
PARAMS = {
    "daily-health": DAILY,
    "scheduled-restart": {"config_path", "endpoints"},
    "gpu-sampling": {"config_path"},
}


def specs():
    return load_deployments(project_dir())


def test_fleet_splits_daily_health_and_places_host_work_on_host_queues():
    cfg = fleet_config()
    out = {s.name: s for s in fleet_deployment_specs(specs(), cfg, PARAMS)}
    central = out["daily-health"]
    assert central.parameters == {"scope": "central"}
    assert (central.work_pool.name, central.work_pool.work_queue_name) == ("llm-upkeep", "central")
    a = out["daily-health-gpu-a"]
    assert a.parameters == {"scope": "host", "host": "gpu-a"}
    assert a.work_pool.work_queue_name == "host-gpu-a"
    assert "host:gpu-a" in a.tags and "h100" in a.tags
    assert [s.cron for s in a.schedules] == [
        s.cron for s in central.schedules
    ]  # one schedule, from prefect.yaml
    assert out["daily-health-gpu-b"].work_pool.work_queue_name == "q-b"
    # Restarts happen only on the host, each for its own endpoints; no central copy.
    assert "scheduled-restart" not in out
    assert out["scheduled-restart-gpu-a"].parameters == {"endpoints": ["a1", "a2"]}
    assert out["scheduled-restart-gpu-b"].parameters == {"endpoints": ["b1"]}
    assert out["scheduled-restart-gpu-b"].schedules[0].active is False  # inactive stays inactive
    # NVML sampling is host-local; every other deployment runs centrally.
    assert {"gpu-sampling-gpu-a", "gpu-sampling-gpu-b"} <= set(out) and "gpu-sampling" not in out
    assert {"weekly-review-gpu-a", "weekly-review-gpu-b"} <= set(out) and "weekly-review" not in out
    for s in specs():
        if s.name not in (
            "daily-health",
            "scheduled-restart",
            "gpu-sampling",
            "monthly-backup",
            "weekly-review",
        ):
            assert out[s.name].work_pool.work_queue_name == "central", s.name


def test_without_hosts_every_deployment_stays_as_written():
    cfg = parse_config({}, None)
    out = fleet_deployment_specs(specs(), cfg, PARAMS)
    assert [s.name for s in out] == [s.name for s in specs()]
    assert all(s.parameters == o.parameters for s, o in zip(specs(), out, strict=True))


def test_flow_without_scope_parameter_is_refused_not_run_wrongly():
    params = dict(PARAMS, **{"daily-health": {"config_path", "allow_restart"}})
    with pytest.raises(ConfigError, match=r"'daily-health' must run per host.*\['scope', 'host'\]"):
        fleet_deployment_specs(specs(), fleet_config(), params)


def test_endpoint_on_an_unlisted_host_is_refused():
    cfg = fleet_config()
    cfg.endpoints[2].host = "gpu-c"
    with pytest.raises(ConfigError, match="host 'gpu-c', which is not in") as e:
        fleet_deployment_specs(specs(), cfg, PARAMS)
    assert e.value.key == "endpoints[2].host"


def test_rendered_prefect_yaml_keeps_pull_steps_and_sets_the_pool():
    root = project_dir()
    doc = read_document(root)
    out = render_document(doc, fleet_deployment_specs(specs(), fleet_config(), PARAMS), pool="other")
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


def test_worker_cli_resolves_the_hosts_queue(tmp_path, monkeypatch, capsys):
    import tomli_w

    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({"fleet": {"work_pool": "gpus", "hosts": [{"name": "gpu-a"}]}}))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["worker", "--host", "gpu-a", "--config", str(cfg), "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["pool"], out["queue"]) == ("gpus", "host-gpu-a")
    assert main(["worker", "--host", "gpu-z", "--config", str(cfg), "--dry-run"]) == 2
    assert "no fleet host named 'gpu-z'" in capsys.readouterr().err
    assert main(["worker", "--central", "--config", str(cfg), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["queue"] == "central"


def test_worker_without_api_url_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["worker", "--dry-run"]) == 2
    assert "set PREFECT_API_URL" in capsys.readouterr().err
