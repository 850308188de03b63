"""prefect.yaml is the one registry of deployments: every entrypoint must import and every
schedule must name its timezone."""

import importlib
from pathlib import Path

import yaml
from prefect.flows import Flow

ROOT = Path(__file__).resolve().parent.parent


def load():
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_every_entrypoint_imports_a_flow():
    deployments = load()["deployments"]
    assert deployments
    names = set()
    for d in deployments:
        path, func = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        obj = getattr(module, func)
        assert isinstance(obj, Flow), d["name"]
        assert d["name"] not in names, "duplicate deployment name"
        names.add(d["name"])


def test_every_schedule_has_cron_and_explicit_timezone():
    for d in load()["deployments"]:
        for s in d.get("schedules") or []:
            assert ("cron" in s) or ("interval" in s), d["name"]
            assert s.get("timezone"), f"{d['name']}: schedule without explicit timezone"


def test_daily_health_at_six_and_restart_inactive():
    by_name = {d["name"]: d for d in load()["deployments"]}
    assert by_name["daily-health"]["schedules"][0]["cron"] == "0 6 * * *"
    assert by_name["scheduled-restart"]["schedules"][0]["active"] is False
