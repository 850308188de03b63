"""The weekly-review and gpu-sampling flows end to end under the Prefect test harness: planted logs,
planted GPU history, a local registry, the fake NVML and the local Slack receiver; and the CLI."""

from __future__ import annotations

import json
import sys

import pytest
import tomli_w

from llm_upkeep import history
from llm_upkeep.cli import main
from llm_upkeep.config import parse_config
from llm_upkeep.sim.slack_sink import SlackSink
from tests.fakes import pynvml as fake_nvml
from tests.review_fixtures import WEEK_END, ollama_manifest, planted_gpu_history

pytestmark = pytest.mark.prefect

SECTIONS = {"errors", "gpu_temperature", "model_updates", "driver", "trends"}


@pytest.fixture
def slack(monkeypatch):
    with SlackSink() as sink:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", sink.webhook_url)
        yield sink


@pytest.fixture
def nvml(monkeypatch):
    fake_nvml.configure(devices=[fake_nvml.FakeDevice(), fake_nvml.FakeDevice(temperature=61, energy_mj=5_000)],
                        driver="560.35.03", cuda=12060)  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    return fake_nvml


def write_config(tmp_path, week, registry, *, pinned, approved_driver="550.54.15", approved_cuda="12.4"):
    data = {
        "state_dir": str(tmp_path / "state"),
        "alerts": {"slack_webhook_url_env": "TEST_SLACK_WEBHOOK"},
        "gpu": {"approved_driver": approved_driver, "approved_cuda": approved_cuda},
        "review": {"sources": week.sources, "ollama_registry_url": registry.url, "hf_endpoint": registry.url,
                   "registry_timeout_s": 5.0, "pinned": pinned},
    }  # fmt: skip
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps(data))
    parse_config(data, str(path))
    return str(path)


def read_artifacts(keys, flow_run_id):
    """This run's artifacts: other tests in the session publish under the same keys."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    flt = ArtifactFilter(key=ArtifactFilterKey(any_=keys), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=flt)
    return {a.key: a for a in arts}


def test_weekly_review_with_planted_trouble(
    prefect_harness, planted_week, registry, slack, nvml, tmp_path, capsys
):
    from flows.weekly_review import weekly_review

    state = tmp_path / "state"
    state.mkdir()
    planted_gpu_history(state, hot_gpu=1, hot_hours=3, hot_c=87.0)
    registry.set_tag("library", "llama3", "8b", ollama_manifest(4_920_000_000, "new"))
    old = "sha256:" + "0" * 64
    cfg = write_config(
        tmp_path, planted_week, registry, pinned=[{"name": "llama3:8b", "source": "ollama", "digest": old}]
    )

    run_state = weekly_review(config_path=cfg, week_end=WEEK_END, return_state=True)
    result = run_state.result()

    verdicts = {k: str(s.verdict) for k, s in result.sections.items()}
    assert verdicts == {
        "errors": "alert",
        "gpu_temperature": "alert",
        "model_updates": "warn",
        "driver": "warn",
        "trends": "skipped",  # a week of GPU samples without memory figures: no trend to tell
    }
    assert result.status == "degraded"
    assert result.sections["gpu_temperature"].summary.startswith("sustained heat on GPU 1 (")
    assert "560.35.03 is newer than the approved 550.54.15" in result.sections["driver"].summary

    # the report: every chore with its verdict, every planted incident with its evidence
    arts = read_artifacts(["weekly-review-report", "weekly-review-error-counts", "weekly-review-gpu-temperatures",
                           "weekly-review-model-updates", "weekly-review-repeated-failures"], run_state.state_details.flow_run_id)  # fmt: skip
    assert set(arts) == {"weekly-review-report", "weekly-review-error-counts", "weekly-review-gpu-temperatures",
                         "weekly-review-model-updates", "weekly-review-repeated-failures"}  # fmt: skip
    md = arts["weekly-review-report"].data
    for title in ("## Error logs: 🚨 ALERT", "## GPU temperatures: 🚨 ALERT", "## Model updates: ⚠️ WARN",
                  "## Driver: ⚠️ WARN"):  # fmt: skip
        assert title in md
    for evidence in (planted_week.oom_burst_lines[0], planted_week.timeout_first_line, planted_week.xid_line,
                     "[GIN] 2026/11/25 - 03:"):  # fmt: skip
        assert evidence in md
    counts = json.loads(arts["weekly-review-error-counts"].data)
    assert {r["day"]: r["oom"] for r in counts}["2026-11-26"] == 6

    # Slack: one summary with the verdicts and the top findings
    (msg,) = slack.messages
    text = json.dumps(msg)
    assert "Weekly LLM review: degraded" in text and "XID 79" in text and "GPU temperatures" in text
    assert result.alerts[0].status == "sent"

    # the plain-text CLI output names the chores and the findings with one evidence line each
    from llm_upkeep.review.cli import _print_review

    _print_review(result)
    out = capsys.readouterr().out
    assert out.startswith("weekly-review: DEGRADED (2026-11-23 to 2026-11-30 UTC")
    assert "ALERT gpu_temperature" in out and "[alert] XID 79" in out and planted_week.xid_line in out

    # the checks went into the history
    df = history.read_checks(state)
    assert set(df[df.flow == "weekly-review"].check_name) >= {
        "log_oom",
        "gpu_heat",
        "model_update",
        "driver_version",
    }


def test_a_failing_chore_is_an_error_section_not_a_crash(prefect_harness, clean_week, registry, slack, nvml,
                                                         tmp_path, monkeypatch):  # fmt: skip
    import tasks.review as tr
    from flows.weekly_review import weekly_review

    def boom(*a, **k):
        raise RuntimeError("registry client exploded")

    monkeypatch.setattr(tr, "check_model_updates", boom)
    cfg = write_config(tmp_path, clean_week, registry, pinned=[{"name": "x:1", "source": "ollama"}])
    result = weekly_review(config_path=cfg, week_end=WEEK_END, send_slack=False)
    assert str(result.sections["model_updates"].verdict) == "error"
    assert "registry client exploded" in result.sections["model_updates"].summary
    assert str(result.sections["errors"].verdict) == "ok"
    assert slack.messages == [] and result.alerts == []


def test_cli_weekly_review_json_on_a_healthy_week(prefect_harness, clean_week, registry, slack, nvml, tmp_path,
                                                  capsys):  # fmt: skip
    state = tmp_path / "state"
    state.mkdir()
    planted_gpu_history(state, hot_gpu=None)
    digest = registry.set_tag("library", "llama3", "8b", ollama_manifest(4_661_211_424, "same"))
    cfg = write_config(tmp_path, clean_week, registry, approved_driver="560.35.03", approved_cuda="12.6",
                       pinned=[{"name": "llama3:8b", "source": "ollama", "digest": digest}])  # fmt: skip
    rc = main(["run", "weekly-review", "--config", cfg, "--json", "--week-end", WEEK_END.isoformat()])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"flow", "status", "sections"} and out["flow"] == "weekly-review"
    assert set(out["sections"]) == SECTIONS
    assert {k: v["verdict"] for k, v in out["sections"].items()} == {**dict.fromkeys(SECTIONS, "ok"),
                                                                     "trends": "skipped"}  # fmt: skip
    assert out["status"] == "ok" and rc == 0
    errors = out["sections"]["errors"]
    assert errors["findings"] == [] and errors["totals"]["timeout"] == 2 and len(errors["counts_by_day"]) == 7
    assert out["sections"]["model_updates"]["models"][0]["status"] == "up_to_date"
    assert {c["check"] for c in out["sections"]["driver"]["checks"]} == {"driver_version", "cuda_version"}
    assert len(slack.messages) == 1  # the weekly summary is sent even when all is well


def test_gpu_sampling_flow_and_cli(prefect_harness, nvml, tmp_path, capsys):
    data = {"state_dir": str(tmp_path / "state")}
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(data))
    rc = main(["run", "gpu-sampling", "--config", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["flow"] == "gpu-sampling" and out["status"] == "ok"
    assert out["samples"] == 2 and out["driver_version"] == "560.35.03"
    assert out["energy_mj"] == {"0": 0, "1": 5000}
    df = history.read_gpu_samples(tmp_path / "state")
    assert list(df.gpu) == [0, 1] and list(df.energy_mj) == [0, 5000] and list(df.temperature_c) == [40, 61]

    nvml.configure(init_error=nvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    rc = main(["run", "gpu-sampling", "--config", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "skipped" and out["samples"] == 0
    assert len(history.read_gpu_samples(tmp_path / "state")) == 2


def test_cli_config_error_exits_2_before_any_flow(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text("[review]\nvolume_z_treshold = 3\n")
    rc = main(["run", "weekly-review", "--config", str(bad), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2 and out["error"] == "config" and out["key"] == "review.volume_z_treshold"
    bad.write_text("[[review.sources]]\nname='x'\nkind='nginx'\npaths=['/x']\n")
    assert main(["run", "weekly-review", "--config", str(bad)]) == 2
    assert "review.sources[0].kind" in capsys.readouterr().err
