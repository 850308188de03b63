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
