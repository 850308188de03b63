from datetime import UTC, datetime, timedelta

from llm_upkeep import history
from llm_upkeep.checks import CheckResult, Status


def test_append_and_read_checks(tmp_path):
    t = datetime(2026, 11, 1, 6, tzinfo=UTC)
    checks = [
        CheckResult(check="ttft", target="a", status=Status.OK, value=0.3, unit="s", threshold=10),
        CheckResult(check="endpoint_up", target="b", status=Status.ALERT, value=0, detail="connection_refused"),
        CheckResult(check="gpu", target="all", status=Status.SKIPPED, value="n/a"),
    ]
    assert history.append_checks(tmp_path, checks, flow="daily-health", run_id="r1", ts=t) == 3
    history.append_checks(tmp_path, checks[:1], flow="daily-health", ts=t + timedelta(days=1))
    df = history.read_checks(tmp_path)
    assert len(df) == 4
    assert df.loc[df.check_name == "ttft", "value"].tolist() == [0.3, 0.3]
    assert df.loc[df.check_name == "gpu", "value_text"].item() == "n/a"
    assert len(history.read_checks(tmp_path, since=t + timedelta(hours=1))) == 1


def test_empty_store_reads_empty(tmp_path):
    assert history.read_gpu_samples(tmp_path).empty


# ---------------------------------------------------------------- reading side: the history command

def _store(tmp_path):
    import tomli_w

    from tests.trend_fixtures import write_history

    state = tmp_path / "state"
    state.mkdir()
    write_history(state, days=3)
    t = datetime(2026, 11, 29, 8, tzinfo=UTC)
    bench = [CheckResult(check="benchmark_ttft_p50_s", target="prod/openai", status=Status.OK, value=0.41, unit="s"),
             CheckResult(check="benchmark", target="prod/openai", status=Status.OK, value=0, unit="regressions")]
    history.append_checks(state, bench, flow="weekly-benchmark", ts=t)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({"state_dir": str(state)}))
    return state, str(cfg)


def test_history_command_filters_and_formats(tmp_path, capsys):
    import csv
    import io
    import json

    from llm_upkeep.cli import main

    _, cfg = _store(tmp_path)
    assert main(["history", "--config", cfg, "--check", "ttft", "--target", "prod", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["series"] == "checks" and out["count"] == 3
    assert {r["check_name"] for r in out["rows"]} == {"ttft"} and {r["target"] for r in out["rows"]} == {"prod"}
    assert all(0.1 < r["value"] < 2 for r in out["rows"]) and out["rows"][0]["ts"] < out["rows"][-1]["ts"]

    assert main(["history", "--config", cfg, "--series", "benchmark", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["check_name"] for r in rows] == ["benchmark_ttft_p50_s", "benchmark"] and rows[0]["value"] == "0.41"

    assert main(["history", "--config", cfg, "--series", "gpu", "--target", "1", "--since", "2026-11-29T12:00",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 12 and {r["gpu"] for r in out["rows"]} == {1}
    assert all(r["memory_total_bytes"] == 80 * 2**30 for r in out["rows"])

    assert main(["history", "--config", cfg, "--check", "tokens_per_second", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("tokens_per_second" in x and "tok/s" in x for x in lines)


def test_history_command_bad_since_and_missing_store(tmp_path, capsys):
    import json

    import tomli_w

    from llm_upkeep.cli import main

    assert main(["history", "--config", _store(tmp_path)[1], "--since", "last tuesday"]) == 2
    assert "not a date, time or age" in capsys.readouterr().err
    cfg = tmp_path / "empty.toml"
    cfg.write_text(tomli_w.dumps({"state_dir": str(tmp_path / "nothing-here")}))
    assert main(["history", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    assert not (tmp_path / "nothing-here").exists()  # reading created nothing


def test_parse_since():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert history.parse_since("7d", now) == now - timedelta(days=7)
    assert history.parse_since("12h", now) == now - timedelta(hours=12)
    assert history.parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
