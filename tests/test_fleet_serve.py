"""`llm-upkeep serve` builds its deployments from prefect.yaml exactly (no server needed to check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_upkeep.cli import main
from llm_upkeep.configbase import ConfigError
from llm_upkeep.deploy import ScheduleSpec, load_deployments, project_dir
from llm_upkeep.serve import build_runner_deployments, to_schedule


def test_every_deployment_keeps_cron_timezone_active_and_gets_the_config(tmp_path):
    root = project_dir()
    specs = load_deployments(root)
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    built = {d.name: d for d in build_runner_deployments(root, specs, str(cfg))}
    assert set(built) == {s.name for s in specs}
    for s in specs:
        d = built[s.name]
        got = [(x.schedule.cron, x.schedule.timezone, x.active) for x in d.schedules]
        assert got == [(x.cron, x.timezone, x.active) for x in s.schedules], s.name
        assert d.entrypoint.startswith(s.module + ".")  # by module: runs from any working directory
        assert d.work_pool_name is None  # served, not sent to a pool
        assert d.parameters.get("config_path") == str(cfg.resolve())


def test_interval_and_rrule_schedules_convert():
    s = to_schedule(ScheduleSpec(interval=3600, timezone="Europe/Berlin", active=False))
    assert s.interval.total_seconds() == 3600 and s.timezone == "Europe/Berlin" and s.active is False
    r = to_schedule(ScheduleSpec(rrule="FREQ=WEEKLY;BYDAY=MO", timezone="UTC"))
    assert r.rrule == "FREQ=WEEKLY;BYDAY=MO"


@pytest.mark.parametrize(
    "schedule, msg",
    [
        ({"cron": "0 6 * * *"}, "timezone"),
        ({"cron": "0 6 * * *", "interval": 60, "timezone": "UTC"}, "exactly one"),
    ],
)
def test_a_schedule_must_name_its_timezone_and_one_kind(tmp_path, schedule, msg):
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: x\n    entrypoint: flows/daily_health.py:daily_health\n    schedules:\n"
        + "".join(
            f"      - {k}: {v!r}\n" if i == 0 else f"        {k}: {v!r}\n"
            for i, (k, v) in enumerate(schedule.items())
        )
    )
    with pytest.raises(ConfigError, match=msg) as e:
        load_deployments(tmp_path)
    assert e.value.key.startswith("deployments[0].schedules.0")


def test_serve_without_a_prefect_server_refuses_instead_of_forgetting_schedules(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("LLM_UPKEEP_CONFIG", raising=False)
    assert main(["serve"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err


def test_unknown_deployment_name_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.delenv("LLM_UPKEEP_CONFIG", raising=False)
    assert main(["serve", "--name", "no-such-flow"]) == 2
    assert "no deployment named no-such-flow" in capsys.readouterr().err


def test_project_dir_without_prefect_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no prefect.yaml found"):
        project_dir(tmp_path)
    assert project_dir(Path(__file__).parent.parent) == Path(__file__).resolve().parent.parent
