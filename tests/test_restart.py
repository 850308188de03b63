import sys

from llm_upkeep.config import RestartConfig
from llm_upkeep.restart import read_ledger, restart_server


def test_dry_run_changes_nothing(tmp_path):
    marker = tmp_path / "ran"
    cfg = RestartConfig(command=["touch", str(marker)], dry_run=True)
    out = restart_server(cfg, tmp_path, target="a", reason="ttft")
    assert out.decision == "dry_run" and not marker.exists()
    assert out.command == ["touch", str(marker)]
    assert read_ledger(tmp_path)[0]["decision"] == "dry_run"


def test_executes_within_budget_then_refuses(tmp_path):
    marker = tmp_path / "count"
    script = f"open({str(marker)!r}, 'a').write('x')"
    cfg = RestartConfig(command=[sys.executable, "-c", script], dry_run=False, max_per_day=2)
    outs = [restart_server(cfg, tmp_path, target="a", reason="leak", now=1_000_000 + i) for i in range(3)]
    assert [o.decision for o in outs] == ["executed", "executed", "over_budget"]
    assert marker.read_text() == "xx"
    # another endpoint has its own budget; the window rolls after 24 h
    assert restart_server(cfg, tmp_path, target="b", reason="leak", now=1_000_010).decision == "executed"
    assert restart_server(cfg, tmp_path, target="a", reason="leak", now=1_000_000 + 86_401).decision == "executed"


def test_failing_command_counts_against_budget(tmp_path):
    cfg = RestartConfig(command=[sys.executable, "-c", "import sys; sys.exit(3)"], dry_run=False, max_per_day=1)
    first = restart_server(cfg, tmp_path, target="a", reason="x")
    assert first.decision == "failed" and first.returncode == 3
    assert restart_server(cfg, tmp_path, target="a", reason="x").decision == "over_budget"


def test_timeout_and_missing_binary(tmp_path):
    cfg = RestartConfig(command=[sys.executable, "-c", "import time; time.sleep(10)"], dry_run=False, timeout_s=0.5)
    out = restart_server(cfg, tmp_path, target="a", reason="x")
    assert out.decision == "failed" and "timed out" in out.output_tail
    cfg = RestartConfig(command=["/nonexistent/restart-me"], dry_run=False)
    assert restart_server(cfg, tmp_path, target="b", reason="x").decision == "failed"


def test_not_configured(tmp_path):
    assert restart_server(RestartConfig(dry_run=False), tmp_path, target="a", reason="x").decision == "not_configured"


def test_placeholders(tmp_path):
    cfg = RestartConfig(command=["echo", "{target}", "{model}"], dry_run=True)
    assert restart_server(cfg, tmp_path, target="ep", reason="x", model="m:1").command == ["echo", "ep", "m:1"]
